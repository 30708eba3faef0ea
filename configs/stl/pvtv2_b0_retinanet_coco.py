# RetinaNet PVT v2-b0 on COCO, 1x: mmdet's
# `pvt/retinanet_pvtv2-b0_fpn_1x_coco.py`.
_base_ = './pvtv2_b2_retinanet_coco.py'

model = dict(
    backbone=dict(
        embed_dims=32,
        num_layers=[2, 2, 2, 2],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b0.pth')),
    neck=dict(in_channels=[32, 64, 160, 256]))
