# PVT v2-b2 ImageNet classifier: mmdet's PyramidVisionTransformerV2 (last
# stage), global average pooling and a linear head, trained with the DeiT
# recipe of the PVT v2 paper (label smoothing here, mixup/cutmix as batch
# augments). 25,362,856 parameters.
# The variable is named by task so that multi-task configs can take all
# three task models from their _base_ files side by side; single-task
# configs use it as `model = _base_.cls_model`.
cls_model = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='mmdet.PyramidVisionTransformerV2',
        embed_dims=64,
        num_layers=[3, 4, 6, 3],
        mlp_ratios=[8, 8, 4, 4],
        drop_path_rate=0.1,
        out_indices=(3, )),
    # PyramidVisionTransformerV2 returns a list; mmpretrain's
    # GlobalAveragePooling takes only a tuple (no parameters either way).
    neck=dict(type='mtl_pvt.ListGlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,  # 8 x embed_dims: channels of stage 4
        init_cfg=None,  # the model's TruncNormal init covers the head
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))
