# Multi-task PVT v2-b0, full sharing: the b2 multi-task model with the b0
# backbone (embed_dims 32, 2 blocks per stage) and the task decoders' input
# channels to match (32, 64, 160, 256).
_base_ = './pvtv2_b2_full_share.py'

model = dict(
    backbone=dict(
        arch=dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b0.pth')),
    tasks=dict(
        cls=dict(head=dict(in_channels=256)),
        det=dict(neck=dict(in_channels=[32, 64, 160, 256])),
        seg=dict(neck=dict(in_channels=[32, 64, 160, 256]))))
