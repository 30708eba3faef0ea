# PVT v2-b4 on ImageNet-1K: the b2 recipe with the b4 backbone.
_base_ = './pvtv2_b2_cls_in1k.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[3, 8, 27, 3],
        drop_path_rate=0.3),
    head=dict(in_channels=512))
