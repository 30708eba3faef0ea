# Multi-task PVT v2-b2, full sharing: all 4 backbone stages are shared by
# ImageNet classification, COCO detection (RetinaNet) and ADE20K
# segmentation (Semantic FPN). The task models are those of the STL
# baselines, taken from the same _base_ files; 24.85 M backbone parameters
# replace the three of the STL models.
_base_ = [
    '../_base_/models/pvtv2_b2_cls.py',
    '../_base_/models/pvtv2_b2_retinanet.py',
    '../_base_/models/pvtv2_b2_semfpn.py',
    '../_base_/default_runtime.py',
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
