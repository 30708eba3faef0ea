# Multi-task Swin-T, full sharing: the PVT v2-b2 study's question on a
# second transformer. All 4 stages of mmdet's Swin-T are shared by
# ImageNet classification, COCO detection (RetinaNet, stages 1-3) and
# ADE20K segmentation (UPerNet, mmseg's reference decoder for Swin); the
# task models are the libraries' reference models (configs/_base_/models/
# swin_t_*.py). Data, schedule and balancing are those of the PVT v2 study
# (configs/mtl/pvtv2_b2_full_share.py).
_base_ = [
    '../_base_/models/swin_t_cls.py',
    '../_base_/models/swin_t_retinanet.py',
    '../_base_/models/swin_t_upernet.py',
    '../_base_/datasets/mtl_in1k_coco_ade20k.py',
    '../_base_/schedules/mtl_joint_90k.py',
    '../_base_/mtl_runtime.py',
]

model = dict(
    type='MultiTaskModel',
    backbone=dict(
        type='SharedSwin',
        # the classifier's and the detector's stochastic depth (UPerNet
        # alone uses 0.3)
        arch=dict(
            embed_dims=96,
            depths=[2, 2, 6, 2],
            num_heads=[3, 6, 12, 24],
            window_size=7,
            drop_path_rate=0.2,
            convert_weights=True),
        share_stages=4,
        # every copy starts from the official ImageNet weights, as mmdet's
        # and mmseg's Swin-T models do
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/SwinTransformer/storage/releases/'
            'download/v1.0.0/swin_tiny_patch4_window7_224.pth')),
    tasks=dict(
        cls=_base_.cls_model, det=_base_.det_model, seg=_base_.seg_model),
    loss_weights=dict(cls=1., det=1., seg=1.))

# No delta-m in the loops: mmdet publishes no box AP for RetinaNet Swin-T
# (mmpretrain's Swin-T has top-1 81.18, mmseg's UPerNet Swin-T 160k mIoU
# 44.41), so the study's own single-task runs are the references: its
# report computes delta-m from them. Without delta-m the best checkpoint
# has no criterion: the last ones are kept.
val_cfg = dict(type='MultiTaskValLoop')
test_cfg = dict(type='MultiTaskTestLoop')
default_hooks = dict(checkpoint=dict(save_best=None))
