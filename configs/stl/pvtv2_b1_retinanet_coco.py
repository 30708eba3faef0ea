# RetinaNet PVT v2-b1 on COCO, 1x: mmdet's
# `pvt/retinanet_pvtv2-b1_fpn_1x_coco.py`.
_base_ = './pvtv2_b2_retinanet_coco.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[2, 2, 2, 2],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b1.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
