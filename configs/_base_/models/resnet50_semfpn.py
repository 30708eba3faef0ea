# Semantic FPN with a ResNet-50 backbone: the model of mmseg's
# `sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py` (37.49 mIoU) on mmdet's
# ResNet-50 (torchvision's stem, ImageNet weights from torchvision) instead
# of mmseg's ResNetV1c (a deep stem of three 3x3 convolutions): the one
# backbone that the classifier and the detector share. 28,495,574
# parameters, 19,232 fewer than mmseg's model, all in the stem
# (tests/test_configs.py checks the rest tensor by tensor).
seg_model = dict(
    _scope_='mmseg',
    backbone=dict(
        depth=50,
        init_cfg=dict(checkpoint='torchvision://resnet50', type='Pretrained'),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        norm_eval=False,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        style='pytorch',
        type='mmdet.ResNet'),
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
        channels=128,
        dropout_ratio=0.1,
        feature_strides=[4, 8, 16, 32],
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        loss_decode=dict(
            loss_weight=1.0, type='CrossEntropyLoss', use_sigmoid=False),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=150,
        type='FPNHead'),
    neck=dict(
        in_channels=[256, 512, 1024, 2048],
        num_outs=4,
        out_channels=256,
        type='FPN'),
    test_cfg=dict(mode='whole'),
    train_cfg=dict(),
    type='EncoderDecoder')
