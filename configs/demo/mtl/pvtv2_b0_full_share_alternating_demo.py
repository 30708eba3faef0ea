# Demo of alternating steps: each step holds one task, with the batch size
# of its STL demo config, and all ranks run the same task in a step. Fixed
# weights give each task as many steps as its STL demo baseline (180 cls,
# 240 det, 900 seg steps in 1320), in a seeded random order: the three STL
# schedules interleaved on one shared backbone.
_base_ = './pvtv2_b0_full_share_demo.py'

train_dataloader = dict(
    batch_sampler=dict(
        mode='alternating',
        batch_sizes=dict(cls=16, det=8, seg=8),
        policy='weights',
        weights=dict(cls=180, det=240, seg=900)))
train_cfg = dict(max_iters=1320, val_interval=660)
default_hooks = dict(checkpoint=dict(interval=660))
