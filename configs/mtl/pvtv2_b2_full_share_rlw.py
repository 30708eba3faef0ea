# Multi-task PVT v2-b2, full sharing, tasks balanced by random loss weighting
# (Lin et al. 2022).
_base_ = './pvtv2_b2_full_share.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', weighting=dict(type='RandomLossWeighting'))
