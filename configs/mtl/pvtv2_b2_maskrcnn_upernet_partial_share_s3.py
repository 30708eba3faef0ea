# Any standard head plugs in: the b2 multi-task model with Mask R-CNN
# (COCO boxes and masks) as the detection task and UPerNet as the
# segmentation task, and a per-stage task grouping that is neither all nor
# nothing: stages 0-2 shared by all tasks, then classification branches off
# while detection and segmentation still share stage 3.
_base_ = [
    '../_base_/models/pvtv2_b2_cls.py',
    '../_base_/models/pvtv2_b2_mask_rcnn.py',
    '../_base_/models/pvtv2_b2_upernet.py',
    '../_base_/datasets/imagenet_bs128_224.py',
    '../_base_/datasets/coco_instance.py',
    '../_base_/datasets/ade20k_512x512.py',
    '../_base_/schedules/mtl_joint_90k.py',
    '../_base_/mtl_runtime.py',
]

model = dict(
    type='MultiTaskModel',
    backbone=dict(
        type='SharedPVTv2',
        arch=dict(
            embed_dims=64,
            num_layers=[3, 4, 6, 3],
            mlp_ratios=[8, 8, 4, 4],
            drop_path_rate=0.1),
        stage_groups=[
            [['cls', 'det', 'seg']],
            [['cls', 'det', 'seg']],
            [['cls', 'det', 'seg']],
            [['cls'], ['det', 'seg']],
        ],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b2.pth')),
    tasks=dict(
        cls=_base_.cls_model, det=_base_.det_model, seg=_base_.seg_model),
    loss_weights=dict(cls=1., det=1., seg=1.))

# Joint steps as in pvtv2_b2_full_share.py: 8 GPUs x (32 ImageNet crops,
# 2 COCO images, 2 ADE20K crops).
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='MultiTaskSampler', shuffle=True),
    batch_sampler=dict(
        type='MultiTaskBatchSampler',
        mode='joint',
        batch_sizes=dict(cls=32, det=2, seg=2)),
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
# The PVT v2 paper has no UPerNet number to compute delta-m against: keep
# the latest checkpoints instead of the best by delta-m.
val_cfg = dict(type='MultiTaskValLoop')
test_cfg = dict(type='MultiTaskTestLoop')
default_hooks = dict(checkpoint=dict(save_best=None))
