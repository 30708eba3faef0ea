# Demo of the detection baseline: RetinaNet + FPN on a PVT v2-b0 backbone,
# from scratch, with thinner FPN and head (64 channels) so that it trains in
# a few minutes on a 2-core CPU on the generated demo set.
_base_ = [
    '../../_base_/models/pvtv2_b0_demo_retinanet.py',
    '../../_base_/datasets/demo_coco.py',
    '../../_base_/det_runtime.py',
]

model = _base_.det_model
train_dataloader = _base_.det_train_dataloader
val_dataloader = _base_.det_val_dataloader
test_dataloader = _base_.det_test_dataloader
val_evaluator = _base_.det_val_evaluator
test_evaluator = _base_.det_test_evaluator

# 160 images / 8 per batch = 20 iterations per epoch
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=20),
    dict(type='MultiStepLR', by_epoch=True, milestones=[10], gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=4, max_keep_ckpts=2))
randomness = dict(seed=0)
