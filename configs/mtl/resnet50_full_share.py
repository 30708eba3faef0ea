# Multi-task ResNet-50, full sharing: the PVT v2-b2 study's question on a
# convolutional backbone. All 4 stages (stem + layer1, layer2, layer3,
# layer4) of mmdet's ResNet-50 are shared by ImageNet classification,
# COCO detection (RetinaNet) and ADE20K segmentation (Semantic FPN); the
# task models are the libraries' reference models (configs/_base_/models/
# resnet50_*.py). Data, schedule and balancing are those of the PVT v2
# study (configs/mtl/pvtv2_b2_full_share.py): what the backbone study
# varies is the backbone only.
_base_ = [
    '../_base_/models/resnet50_cls.py',
    '../_base_/models/resnet50_retinanet.py',
    '../_base_/models/resnet50_semfpn.py',
    '../_base_/datasets/mtl_in1k_coco_ade20k.py',
    '../_base_/schedules/mtl_joint_90k.py',
    '../_base_/mtl_runtime.py',
]

model = dict(
    type='MultiTaskModel',
    backbone=dict(
        type='SharedResNet',
        # one backbone for the three tasks: the classifier's recipe trains
        # every stage and BN layer (RetinaNet alone freezes the stem and
        # layer1 and keeps BN statistics); plain BN, as both do
        arch=dict(
            depth=50,
            style='pytorch',
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=False,
            frozen_stages=-1),
        share_stages=4,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    tasks=dict(
        cls=_base_.cls_model, det=_base_.det_model, seg=_base_.seg_model),
    loss_weights=dict(cls=1., det=1., seg=1.))

# Single-task references of the libraries' model zoos: mmpretrain's
# ResNet-50 top-1 76.55, mmdet's RetinaNet R-50 1x box AP 36.5, mmseg's
# Semantic FPN R-50 (ResNetV1c) 160k mIoU 37.49.
delta_m = dict(
    cls=dict(metric='accuracy/top1', stl=76.55),
    det=dict(metric='coco/bbox_mAP', stl=0.365),
    seg=dict(metric='mIoU', stl=37.49))
val_cfg = dict(type='MultiTaskValLoop', delta_m=delta_m)
test_cfg = dict(type='MultiTaskTestLoop', delta_m=delta_m)
