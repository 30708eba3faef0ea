# RetinaNet PVT v2-b3 on COCO, 1x: mmdet's
# `pvt/retinanet_pvtv2-b3_fpn_1x_coco.py`.
_base_ = './pvtv2_b2_retinanet_coco.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[3, 4, 18, 3],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b3.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
