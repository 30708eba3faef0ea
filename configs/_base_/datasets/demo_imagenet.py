# The generated demo classification set (tools/misc/make_demo_data.py) in
# ImageNet's layout: train/<class>/*.JPEG, flat val/, meta/{train,val}.txt.
# 4 classes of 64x64 images.
dataset_type = 'mmpretrain.ImageNet'
data_root = 'data/demo/imagenet'
metainfo = dict(classes=('car', 'bus', 'clock', 'bottle'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpretrain.PackInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        metainfo=metainfo,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# top-5 of 4 classes would always be 100%
val_evaluator = dict(type='mmpretrain.Accuracy', topk=(1, ))
test_evaluator = val_evaluator
