# Multi-task PVT v2-b2, full sharing: all 4 backbone stages are shared by
# ImageNet classification, COCO detection (RetinaNet) and ADE20K
# segmentation (Semantic FPN). The task models are those of the STL
# baselines, taken from the same _base_ files; 24.85 M backbone parameters
# replace the three of the STL models.
_base_ = [
    '../_base_/models/pvtv2_b2_cls.py',
    '../_base_/models/pvtv2_b2_retinanet.py',
    '../_base_/models/pvtv2_b2_semfpn.py',
    '../_base_/datasets/imagenet_bs128_224.py',
    '../_base_/datasets/coco_detection.py',
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
        share_stages=4,
        # Every copy of every stage starts from the official ImageNet
        # weights, as the detection and segmentation baselines do.
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b2.pth')),
    # Each task reads the stages its STL backbone config lists in
    # out_indices: stage 4 for cls, all four for det and seg.
    tasks=dict(
        cls=_base_.cls_model, det=_base_.det_model, seg=_base_.seg_model),
    loss_weights=dict(cls=1., det=1., seg=1.))

# Joint steps on 8 GPUs: every step holds 8 x 32 ImageNet crops, 8 x 2 COCO
# images (mmdet's 1x batch) and 8 x 2 ADE20K crops. The 90k steps of the
# schedule are 12 COCO epochs (90k x 16 / 117k, the 1x schedule), 71 ADE20K
# epochs and 18 ImageNet epochs (the backbone starts from ImageNet weights).
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

# Single-task references of the PVT v2 paper (b2): ImageNet top-1 82.0,
# RetinaNet 1x box AP 44.6 (mmdet reports 0.446), Semantic FPN mIoU 45.2.
delta_m = dict(
    cls=dict(metric='accuracy/top1', stl=82.0),
    det=dict(metric='coco/bbox_mAP', stl=0.446),
    seg=dict(metric='mIoU', stl=45.2))
val_cfg = dict(type='MultiTaskValLoop', delta_m=delta_m)
test_cfg = dict(type='MultiTaskTestLoop', delta_m=delta_m)
