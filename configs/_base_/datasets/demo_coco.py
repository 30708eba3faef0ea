# The generated demo detection set (tools/misc/make_demo_data.py) in COCO's
# layout: {train,val}2017/*.jpg and annotations/instances_*.json.
# 4 classes, 128x128 images with 1-3 objects each.
det_dataset_type = 'mmdet.CocoDataset'
det_data_root = 'data/demo/coco/'
det_metainfo = dict(classes=('car', 'bus', 'clock', 'bottle'))

det_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    # the images are already 128x128; Resize records the scale factor
    dict(type='mmdet.Resize', scale=(128, 128), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PackDetInputs'),
]
det_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(128, 128), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]

det_train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='mmdet.AspectRatioBatchSampler'),
    dataset=dict(
        type=det_dataset_type,
        data_root=det_data_root,
        metainfo=det_metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=det_train_pipeline))
det_val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=det_dataset_type,
        data_root=det_data_root,
        metainfo=det_metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=det_test_pipeline))
det_test_dataloader = det_val_dataloader

det_val_evaluator = dict(
    type='mmdet.CocoMetric',
    ann_file=det_data_root + 'annotations/instances_val2017.json',
    metric='bbox',
    format_only=False)
det_test_evaluator = det_val_evaluator
