# Multi-task PVT v2-b2, full sharing, tasks balanced by dynamic weight average
# (Liu et al. 2019) over windows of 500 iterations.
_base_ = './pvtv2_b2_full_share.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper',
    weighting=dict(type='DynamicWeightAverage', window=500))
