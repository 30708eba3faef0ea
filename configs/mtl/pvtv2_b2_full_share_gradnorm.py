# Multi-task PVT v2-b2, full sharing, tasks balanced by GradNorm (Chen et al.
# 2018) on the last shared stage.
_base_ = './pvtv2_b2_full_share.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', weighting=dict(type='GradNorm'))
