# The demo detector: the b2 RetinaNet at b0 size, from scratch, with a
# thinner FPN and head (64 channels) for the 4 demo classes.
_base_ = './pvtv2_b2_retinanet.py'

det_model = dict(
    backbone=dict(embed_dims=32, num_layers=[2, 2, 2, 2], init_cfg=None),
    neck=dict(in_channels=[32, 64, 160, 256], out_channels=64),
    bbox_head=dict(
        num_classes=4, in_channels=64, feat_channels=64, stacked_convs=2))
