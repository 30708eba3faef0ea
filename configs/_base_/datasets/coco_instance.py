# COCO 2017 instance segmentation: mmdet's `coco_instance` dataset base,
# i.e. the detection base with masks loaded and a bbox + segm CocoMetric,
# under the same task-named variables (for Mask R-CNN as the detection
# task). tests/test_configs.py checks it against mmdet's.
_base_ = './coco_detection.py'

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
det_train_dataloader = dict(dataset=dict(pipeline=det_train_pipeline))
det_val_dataloader = dict(dataset=dict(pipeline=det_test_pipeline))
det_test_dataloader = det_val_dataloader
det_val_evaluator = dict(metric=['bbox', 'segm'])
det_test_evaluator = det_val_evaluator
