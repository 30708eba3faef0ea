# COCO 2017 instance segmentation: mmdet's `coco_instance` dataset base
# (boxes and masks, 1333x800 resize, flip, batches of 2 with aspect-ratio
# grouping, bbox and segm CocoMetric), with task-named variables so that
# multi-task configs can use it as their detection task (Mask R-CNN).
# tests/test_configs.py checks it against mmdet's.
det_data_root = 'data/coco/'

det_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
det_test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    # annotations are loaded after Resize: the metric reads the originals
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

det_train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(_scope_='mmdet', type='AspectRatioBatchSampler'),
    dataset=dict(
        _scope_='mmdet',
        type='CocoDataset',
        data_root=det_data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=det_train_pipeline,
        backend_args=None))
det_val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _scope_='mmdet',
        type='CocoDataset',
        data_root=det_data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=det_test_pipeline,
        backend_args=None))
det_test_dataloader = det_val_dataloader
det_val_evaluator = dict(
    _scope_='mmdet',
    type='CocoMetric',
    ann_file=det_data_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=None)
det_test_evaluator = det_val_evaluator
