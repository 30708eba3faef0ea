# Demo of the multi-task model, full sharing: the three demo task models of
# configs/demo/stl on one PVT v2-b0 backbone, trained jointly on the three
# generated demo datasets (every step holds a batch of every task), and
# validated with each task's standard evaluator.
_base_ = [
    '../../_base_/models/pvtv2_b0_demo_cls.py',
    '../../_base_/models/pvtv2_b0_demo_retinanet.py',
    '../../_base_/models/pvtv2_b0_demo_semfpn.py',
    '../../_base_/datasets/mtl_demo.py',
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
