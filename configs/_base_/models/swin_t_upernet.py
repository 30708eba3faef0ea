# UPerNet with a Swin-T backbone: the model of mmseg's
# `swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py`
# (44.41 mIoU; mmseg's reference decoder for Swin, not Semantic FPN), with
# mmdet's SwinTransformer (the same 59,941,862 parameters, checked in
# tests/test_configs.py) loading the official ImageNet weights.
seg_model = dict(
    _scope_='mmseg',
    auxiliary_head=dict(
        align_corners=False,
        channels=256,
        concat_input=False,
        dropout_ratio=0.1,
        in_channels=384,
        in_index=2,
        loss_decode=dict(
            loss_weight=0.4, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=150,
        num_convs=1,
        type='FCNHead'),
    backbone=dict(
        convert_weights=True,
        depths=[2, 2, 6, 2],
        drop_path_rate=0.3,
        embed_dims=96,
        init_cfg=dict(
            checkpoint='https://github.com/SwinTransformer/storage/releases/'
            'download/v1.0.0/swin_tiny_patch4_window7_224.pth',
            type='Pretrained'),
        num_heads=[3, 6, 12, 24],
        out_indices=(0, 1, 2, 3),
        type='mmdet.SwinTransformer',
        window_size=7),
    data_preprocessor=dict(
        bgr_to_rgb=True,
        mean=[123.675, 116.28, 103.53],
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512),
        std=[58.395, 57.12, 57.375],
        type='SegDataPreProcessor'),
    decode_head=dict(
        align_corners=False,
        channels=512,
        dropout_ratio=0.1,
        in_channels=[96, 192, 384, 768],
        in_index=[0, 1, 2, 3],
        loss_decode=dict(
            loss_weight=1.0, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=150,
        pool_scales=(1, 2, 3, 6),
        type='UPerHead'),
    test_cfg=dict(mode='whole'),
    train_cfg=dict(),
    type='EncoderDecoder')
