# Multi-task PVT v2-b2, full sharing, tasks balanced by uncertainty weighting
# (Kendall et al. 2018), learned log-variances.
_base_ = './pvtv2_b2_full_share.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', weighting=dict(type='UncertaintyWeighting'))
