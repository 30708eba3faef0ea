# PVT v2-b1 on ImageNet-1K: the b2 recipe with the b1 backbone.
_base_ = './pvtv2_b2_cls_in1k.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[2, 2, 2, 2],
        drop_path_rate=0.1),
    head=dict(in_channels=512))
