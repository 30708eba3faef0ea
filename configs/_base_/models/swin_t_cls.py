# Swin-T ImageNet classifier: the model of mmpretrain's
# `swin_transformer/swin-tiny_16xb64_in1k.py` (81.18 top-1), with mmdet's
# SwinTransformer (the class SharedSwin reuses; the same 28,288,354
# parameters, checked in tests/test_configs.py). mmdet's Swin returns a
# list, which mmpretrain's GlobalAveragePooling does not take.
cls_model = dict(
    _scope_='mmpretrain',
    backbone=dict(
        depths=[2, 2, 6, 2],
        drop_path_rate=0.2,
        embed_dims=96,
        num_heads=[3, 6, 12, 24],
        out_indices=(3, ),
        type='mmdet.SwinTransformer',
        window_size=7),
    head=dict(
        cal_acc=False,
        in_channels=768,
        init_cfg=None,
        loss=dict(
            label_smooth_val=0.1, mode='original', type='LabelSmoothLoss'),
        num_classes=1000,
        type='LinearClsHead'),
    init_cfg=[
        dict(bias=0.0, layer='Linear', std=0.02, type='TruncNormal'),
        dict(bias=0.0, layer='LayerNorm', type='Constant', val=1.0)
    ],
    neck=dict(type='mtl_pvt.ListGlobalAveragePooling'),
    train_cfg=dict(augments=[
        dict(alpha=0.8, type='Mixup'),
        dict(alpha=1.0, type='CutMix')
    ]),
    type='ImageClassifier')
