# ADE20K (ADEChallengeData2016), 512x512 crops: mmseg's `ade20k` dataset
# base (random resize 0.5-2.0 of 2048x512, crop with cat_max_ratio 0.75,
# flip, photometric distortion; 4 images per GPU), with task-named
# variables so that multi-task configs can combine the three tasks'
# datasets. tests/test_configs.py checks it against mmseg's.
seg_data_root = 'data/ade/ADEChallengeData2016'
seg_crop_size = (512, 512)

seg_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=seg_crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
seg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    # annotations are loaded after Resize: the metric reads the originals
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]

seg_train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _scope_='mmseg',
        type='ADE20KDataset',
        data_root=seg_data_root,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=seg_train_pipeline))
seg_val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _scope_='mmseg',
        type='ADE20KDataset',
        data_root=seg_data_root,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=seg_test_pipeline))
seg_test_dataloader = seg_val_dataloader
seg_val_evaluator = dict(
    _scope_='mmseg', type='IoUMetric', iou_metrics=['mIoU'])
seg_test_evaluator = seg_val_evaluator
