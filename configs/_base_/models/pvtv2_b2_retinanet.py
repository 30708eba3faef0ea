# RetinaNet with a PVT v2-b2 backbone and FPN: the model of mmdet's
# `pvt/retinanet_pvtv2-b2_fpn_1x_coco.py`, built on the same mmdet base.
# 35,099,828 parameters (80 classes).
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdet.PyramidVisionTransformerV2',
        embed_dims=64,
        num_layers=[3, 4, 6, 3],
        # the official ImageNet weights; mmdet converts their keys on load
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
