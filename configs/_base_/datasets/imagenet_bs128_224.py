# ImageNet-1K with the DeiT-style pipeline of the PVT v2 paper: mmpretrain's
# `imagenet_bs64_swin_224` (RandomResizedCrop 224 bicubic, flip, RandAugment
# rand-m9-mstd0.5-inc1, random erasing 0.25; test: resize 256 + centre crop
# 224) at 128 images per GPU (8 GPUs x 128 = 1024). Variables are named by
# task so that multi-task configs can combine the three tasks' datasets;
# tests/test_configs.py checks them against mmpretrain's base.
cls_data_root = 'data/imagenet'
cls_bgr_mean = [103.53, 116.28, 123.675]
cls_bgr_std = [57.375, 57.12, 58.395]

cls_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(
            pad_val=[round(x) for x in cls_bgr_mean],
            interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=cls_bgr_mean,
        fill_std=cls_bgr_std),
    dict(type='PackInputs'),
]
cls_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

cls_train_dataloader = dict(
    batch_size=128,
    num_workers=5,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        _scope_='mmpretrain',
        type='ImageNet',
        data_root=cls_data_root,
        split='train',
        pipeline=cls_train_pipeline))
cls_val_dataloader = dict(
    batch_size=64,
    num_workers=5,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _scope_='mmpretrain',
        type='ImageNet',
        data_root=cls_data_root,
        split='val',
        pipeline=cls_test_pipeline))
cls_test_dataloader = cls_val_dataloader
cls_val_evaluator = dict(_scope_='mmpretrain', type='Accuracy', topk=(1, 5))
cls_test_evaluator = cls_val_evaluator
