# The generated demo segmentation set (tools/misc/make_demo_data.py) in
# ADE20K's layout: images/ and annotations/ with {training,validation}/,
# label PNGs in ADE20K's label space (0 = other, ignored by
# reduce_zero_label). 'wall' plus the 4 object classes, 128x128 images.
dataset_type = 'mmseg.ADE20KDataset'
data_root = 'data/demo/ade/ADEChallengeData2016'
metainfo = dict(classes=('wall', 'car', 'bus', 'clock', 'bottle'))
crop_size = (128, 128)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations', reduce_zero_label=True),
    dict(type='mmseg.RandomFlip', prob=0.5),
    dict(type='mmseg.PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations', reduce_zero_label=True),
    dict(type='mmseg.PackSegInputs'),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
