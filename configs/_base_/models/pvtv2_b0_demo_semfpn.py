# The demo segmentor: the b2 Semantic FPN at b0 size, from scratch, with a
# thinner FPN (64) and head (32 channels), 128x128 inputs, the 5 demo
# classes, and plain BN (SyncBN needs CUDA under DDP).
_base_ = './pvtv2_b2_semfpn.py'

seg_model = dict(
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(embed_dims=32, num_layers=[2, 2, 2, 2], init_cfg=None),
    neck=dict(in_channels=[32, 64, 160, 256], out_channels=64),
    decode_head=dict(
        in_channels=[64, 64, 64, 64],
        channels=32,
        num_classes=5,
        norm_cfg=dict(type='BN', requires_grad=True)))
