# Demo, full sharing, FAMO (Liu et al. 2023) as its official code: after each
# step, one extra no-grad forward of the same batch (LossWeightingHook)
# measures how much each task's loss fell, which updates the task logits.
_base_ = './pvtv2_b0_full_share_demo.py'

optim_wrapper = dict(
    type='MultiTaskOptimWrapper', weighting=dict(type='FAMO'))
custom_hooks = [
    dict(type='TaskMonitorHook'),
    dict(type='RandomStateHook'),
    dict(type='LossWeightingHook')
]
