# The demo classifier: the b2 classifier at b0 size for the 4 demo classes.
_base_ = './pvtv2_b2_cls.py'

cls_model = dict(
    data_preprocessor=dict(num_classes=4),
    backbone=dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
    head=dict(num_classes=4, in_channels=256),
    # 240 images train too few steps for mixup/cutmix to pay off
    train_cfg=None)
