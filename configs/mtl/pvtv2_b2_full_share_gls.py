# Multi-task PVT v2-b2, full sharing, tasks balanced by the geometric mean of
# the task losses (Chennupati et al. 2019).
_base_ = './pvtv2_b2_full_share.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', weighting=dict(type='GeometricLossStrategy'))
