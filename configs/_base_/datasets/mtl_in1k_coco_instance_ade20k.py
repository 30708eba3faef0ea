# The multi-task data set of mtl_in1k_coco_ade20k.py with COCO instance
# segmentation as the detection task (for Mask R-CNN): mmdet's
# `coco_instance` dataset base, i.e. the detection base with masks loaded
# and a bbox + segm CocoMetric, applied to the task-named det_* variables
# and to the det entries of the multi-task loaders and evaluators.
# tests/test_configs.py checks the det_* variables against mmdet's base.
_base_ = './mtl_in1k_coco_ade20k.py'

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

train_dataloader = dict(
    dataset=dict(datasets=dict(det=det_train_dataloader['dataset'])))
val_dataloader = dict(det=det_val_dataloader)
test_dataloader = dict(det=det_test_dataloader)
val_evaluator = dict(det=det_val_evaluator)
test_evaluator = dict(det=det_test_evaluator)
