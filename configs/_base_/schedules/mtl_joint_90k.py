# Multi-task schedule: 90k joint steps (each with a batch of every task),
# with the PVT v2 detection and segmentation recipe: AdamW, lr 1e-4, weight
# decay 1e-4, 1k linear warm-up steps, then poly decay to zero. With
# 8 GPUs x 2 COCO images per step, 90k steps are COCO's 12-epoch 1x
# schedule (90k x 16 / 117k images). Each task's gradient is clipped by
# its own norm, so that the tasks do not rescale each other's updates (and
# a task that shares nothing is clipped as in its single-task run).
optim_wrapper = dict(
    type='MultiTaskOptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001),
    task_clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, end=1000),
    dict(
        type='PolyLR',
        eta_min=0.,
        power=0.9,
        begin=1000,
        end=90000,
        by_epoch=False)
]
train_cfg = dict(
    type='MultiTaskIterBasedTrainLoop', max_iters=90000, val_interval=10000)
auto_scale_lr = dict(enable=False, base_batch_size=16)
