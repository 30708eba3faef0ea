# Demo, full sharing, tasks balanced by uncertainty weighting (Kendall et al.
# 2018): learned log-variances s_t, weights exp(-s_t). One backward per step;
# the weights and sigmas are logged as train/mtl.weight.<task>.
_base_ = './pvtv2_b0_full_share_demo.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper',
    weighting=dict(type='UncertaintyWeighting'))
