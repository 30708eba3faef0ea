# The generated demo classification set (tools/misc/make_demo_data.py) in
# ImageNet's layout: train/<class>/*.JPEG, flat val/, meta/{train,val}.txt.
# 4 classes of 64x64 images.
cls_dataset_type = 'mmpretrain.ImageNet'
cls_data_root = 'data/demo/imagenet'
cls_metainfo = dict(classes=('car', 'bus', 'clock', 'bottle'))

cls_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
cls_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.PackInputs'),
]

cls_train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=cls_dataset_type,
        data_root=cls_data_root,
        split='train',
        metainfo=cls_metainfo,
        pipeline=cls_train_pipeline))
cls_val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=cls_dataset_type,
        data_root=cls_data_root,
        split='val',
        metainfo=cls_metainfo,
        pipeline=cls_test_pipeline))
cls_test_dataloader = cls_val_dataloader

# top-5 of 4 classes would always be 100%
cls_val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, ))
cls_test_evaluator = cls_val_evaluator
