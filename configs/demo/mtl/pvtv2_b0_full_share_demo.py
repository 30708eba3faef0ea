# Demo of the multi-task model, full sharing: the three demo task models of
# configs/demo/stl on one PVT v2-b0 backbone, trained jointly on the three
# generated demo datasets (every step holds a batch of every task), and
# validated with each task's standard evaluator.
_base_ = [
    '../../_base_/models/pvtv2_b0_demo_cls.py',
    '../../_base_/models/pvtv2_b0_demo_retinanet.py',
    '../../_base_/models/pvtv2_b0_demo_semfpn.py',
    '../../_base_/datasets/demo_imagenet.py',
    '../../_base_/datasets/demo_coco.py',
    '../../_base_/datasets/demo_ade20k.py',
    '../../_base_/mtl_runtime.py',
]

model = dict(
    type='MultiTaskModel',
    backbone=dict(
        type='SharedPVTv2',
        arch=dict(
            embed_dims=32,
            num_layers=[2, 2, 2, 2],
            mlp_ratios=[8, 8, 4, 4],
            drop_path_rate=0.1),
        share_stages=4),
    tasks=dict(
        cls=_base_.cls_model, det=_base_.det_model, seg=_base_.seg_model),
    loss_weights=dict(cls=1., det=1., seg=1.))

# 240 joint steps x (6 cls, 4 det, 8 seg) images = 1440 / 960 / 1920
# samples: 6 epochs of the 240 cls and of the 160 det images, 16 of the
# 120 seg images. The matched single-task baselines (tools/study.py,
# mtl_pvt.study.matched) get the same batches, updates and schedule.
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='MultiTaskSampler', shuffle=True),
    batch_sampler=dict(
        type='MultiTaskBatchSampler',
        mode='joint',
        batch_sizes=dict(cls=6, det=4, seg=8)),
    dataset=dict(
        type='MultiTaskDataset',
        datasets=dict(
            cls=_base_.cls_train_dataloader.dataset,
            det=_base_.det_train_dataloader.dataset,
            seg=_base_.seg_train_dataloader.dataset)))
val_dataloader = dict(
    cls=_base_.cls_val_dataloader,
    det=_base_.det_val_dataloader,
    seg=_base_.seg_val_dataloader)
test_dataloader = dict(
    cls=_base_.cls_test_dataloader,
    det=_base_.det_test_dataloader,
    seg=_base_.seg_test_dataloader)
val_evaluator = dict(
    cls=_base_.cls_val_evaluator,
    det=_base_.det_val_evaluator,
    seg=_base_.seg_val_evaluator)
test_evaluator = dict(
    cls=_base_.cls_test_evaluator,
    det=_base_.det_test_evaluator,
    seg=_base_.seg_test_evaluator)

# Single-task references for the validation's delta-m (and the best
# checkpoint): the matched STL demo runs' test metrics (`make demo`, seed
# 0, on the generated data; equal to the no-share run's, bit for bit). The
# study report computes delta-m per seed from the study's own STL runs.
delta_m = dict(
    cls=dict(metric='accuracy/top1', stl=43.33),
    det=dict(metric='coco/bbox_mAP', stl=0.215),
    seg=dict(metric='mIoU', stl=26.3))
train_cfg = dict(
    type='MultiTaskIterBasedTrainLoop', max_iters=240, val_interval=240)
val_cfg = dict(type='MultiTaskValLoop', delta_m=delta_m)
test_cfg = dict(type='MultiTaskTestLoop', delta_m=delta_m)

# each task's gradient clipped by its own norm (the tasks do not rescale
# each other's updates): with nothing shared, each task's branch gets the
# updates of its matched single-task run (mtl_pvt.study.matched)
optim_wrapper = dict(
    type='MultiTaskOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    task_clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=20),
    dict(type='PolyLR', eta_min=0., power=0.9, by_epoch=False, begin=20)
]

default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=120, max_keep_ckpts=2))
randomness = dict(seed=0)
