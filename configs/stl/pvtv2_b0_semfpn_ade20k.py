# Semantic FPN PVT v2-b0 on ADE20K: the b2 recipe with the b0 backbone.
_base_ = './pvtv2_b2_semfpn_ade20k.py'

model = dict(
    backbone=dict(
        embed_dims=32,
        num_layers=[2, 2, 2, 2],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b0.pth')),
    neck=dict(in_channels=[32, 64, 160, 256]))
