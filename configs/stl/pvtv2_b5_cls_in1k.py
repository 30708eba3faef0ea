# PVT v2-b5 on ImageNet-1K: the b2 recipe with the b5 backbone.
_base_ = './pvtv2_b2_cls_in1k.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[3, 6, 40, 3],
        mlp_ratios=(4, 4, 4, 4),
        drop_path_rate=0.3),
    head=dict(in_channels=512))
