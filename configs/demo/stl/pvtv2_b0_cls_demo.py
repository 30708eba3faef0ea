# Demo of the classification baseline: the PVT v2 classifier of
# configs/stl at b0 size, from scratch, on the generated demo set, sized to
# train in a few minutes on a 2-core CPU.
_base_ = [
    '../../_base_/models/pvtv2_b0_demo_cls.py',
    '../../_base_/datasets/demo_imagenet.py',
    '../../_base_/cls_runtime.py',
]

model = _base_.cls_model
train_dataloader = _base_.cls_train_dataloader
val_dataloader = _base_.cls_val_dataloader
test_dataloader = _base_.cls_test_dataloader
val_evaluator = _base_.cls_val_evaluator
test_evaluator = _base_.cls_test_evaluator

# 240 images / 16 per batch = 15 iterations per epoch
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=20),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, eta_min=1e-5)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=4, max_keep_ckpts=2))
randomness = dict(seed=0)
