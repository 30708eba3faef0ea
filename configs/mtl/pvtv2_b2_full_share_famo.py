# Multi-task PVT v2-b2, full sharing, FAMO (Liu et al. 2023) as its official
# code: one extra no-grad forward of the step's batch after each step
# (LossWeightingHook) measures each task's loss decrease.
_base_ = './pvtv2_b2_full_share.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', weighting=dict(type='FAMO'))
custom_hooks = [
    dict(type='TaskMonitorHook'),
    dict(type='RandomStateHook'),
    dict(type='LossWeightingHook')
]
