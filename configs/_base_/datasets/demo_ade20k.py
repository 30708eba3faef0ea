# The generated demo segmentation set (tools/misc/make_demo_data.py) in
# ADE20K's layout: images/ and annotations/ with {training,validation}/,
# label PNGs in ADE20K's label space (0 = other, ignored by
# reduce_zero_label). 'wall' plus the 4 object classes, 128x128 images.
seg_dataset_type = 'mmseg.ADE20KDataset'
seg_data_root = 'data/demo/ade/ADEChallengeData2016'
seg_metainfo = dict(classes=('wall', 'car', 'bus', 'clock', 'bottle'))
seg_crop_size = (128, 128)

seg_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations', reduce_zero_label=True),
    dict(type='mmseg.RandomFlip', prob=0.5),
    dict(type='mmseg.PackSegInputs'),
]
seg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmseg.LoadAnnotations', reduce_zero_label=True),
    dict(type='mmseg.PackSegInputs'),
]

seg_train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=seg_dataset_type,
        data_root=seg_data_root,
        metainfo=seg_metainfo,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=seg_train_pipeline))
seg_val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=seg_dataset_type,
        data_root=seg_data_root,
        metainfo=seg_metainfo,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=seg_test_pipeline))
seg_test_dataloader = seg_val_dataloader

seg_val_evaluator = dict(type='mmseg.IoUMetric', iou_metrics=['mIoU'])
seg_test_evaluator = seg_val_evaluator
