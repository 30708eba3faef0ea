# Demo of the segmentation baseline: Semantic FPN on a PVT v2-b0 backbone,
# from scratch, with thinner FPN (64) and head (32 channels) and plain BN
# (SyncBN needs CUDA under DDP), on the generated demo set.
_base_ = [
    '../../_base_/models/pvtv2_b0_demo_semfpn.py',
    '../../_base_/datasets/demo_ade20k.py',
    '../../_base_/seg_runtime.py',
]

model = _base_.seg_model
train_dataloader = _base_.seg_train_dataloader
val_dataloader = _base_.seg_val_dataloader
test_dataloader = _base_.seg_test_dataloader
val_evaluator = _base_.seg_val_evaluator
test_evaluator = _base_.seg_test_evaluator

# 120 images / 8 per batch = 15 iterations per epoch: 60 epochs
train_cfg = dict(type='IterBasedTrainLoop', max_iters=900, val_interval=300)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=20),
    dict(type='PolyLR', eta_min=0., power=0.9, by_epoch=False, begin=20)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(by_epoch=False, interval=300, max_keep_ckpts=2))
randomness = dict(seed=0)
