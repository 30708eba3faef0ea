# PVT v2-b3 on ImageNet-1K: the b2 recipe with the b3 backbone.
_base_ = './pvtv2_b2_cls_in1k.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[3, 4, 18, 3],
        drop_path_rate=0.3),
    head=dict(in_channels=512))
