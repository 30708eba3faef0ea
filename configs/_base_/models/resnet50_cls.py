# ResNet-50 ImageNet classifier: the model of mmpretrain's
# `resnet/resnet50_8xb32_in1k.py` (76.55 top-1), with mmdet's ResNet (the
# class SharedResNet reuses; the same architecture and 25,557,032
# parameters, checked in tests/test_configs.py) set to train as
# mmpretrain's does: every stage and BN layer.
cls_model = dict(
    _scope_='mmpretrain',
    backbone=dict(
        depth=50,
        frozen_stages=-1,
        norm_eval=False,
        num_stages=4,
        out_indices=(3, ),
        style='pytorch',
        type='mmdet.ResNet'),
    head=dict(
        in_channels=2048,
        loss=dict(loss_weight=1.0, type='CrossEntropyLoss'),
        num_classes=1000,
        topk=(1, 5),
        type='LinearClsHead'),
    neck=dict(type='GlobalAveragePooling'),
    type='ImageClassifier')
