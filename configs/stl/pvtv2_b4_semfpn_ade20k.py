# Semantic FPN PVT v2-b4 on ADE20K: the b2 recipe with the b4 backbone.
_base_ = './pvtv2_b2_semfpn_ade20k.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[3, 8, 27, 3],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b4.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))
