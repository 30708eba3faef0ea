# Multi-task PVT v2-b2, full sharing: all 4 backbone stages are shared by
# ImageNet classification, COCO detection (RetinaNet) and ADE20K
# segmentation (Semantic FPN). The task models are those of the STL
# baselines, taken from the same _base_ files; 24.85 M backbone parameters
# replace the three of the STL models.
_base_ = [
    '../_base_/models/pvtv2_b2_cls.py',
    '../_base_/models/pvtv2_b2_retinanet.py',
    '../_base_/models/pvtv2_b2_semfpn.py',
    '../_base_/datasets/mtl_in1k_coco_ade20k.py',
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

# Single-task references of the PVT v2 paper (b2): ImageNet top-1 82.0,
# RetinaNet 1x box AP 44.6 (mmdet reports 0.446), Semantic FPN mIoU 45.2.
delta_m = dict(
    cls=dict(metric='accuracy/top1', stl=82.0),
    det=dict(metric='coco/bbox_mAP', stl=0.446),
    seg=dict(metric='mIoU', stl=45.2))
val_cfg = dict(type='MultiTaskValLoop', delta_m=delta_m)
test_cfg = dict(type='MultiTaskTestLoop', delta_m=delta_m)
