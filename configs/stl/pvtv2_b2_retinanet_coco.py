# RetinaNet PVT v2-b2 on COCO, 1x: the same model and schedule as mmdet's
# `pvt/retinanet_pvtv2-b2_fpn_1x_coco.py` (8 GPUs x 2 images).
# Paper: 44.6 box AP, 35.1 M parameters.
_base_ = [
    '../_base_/models/pvtv2_b2_retinanet.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/coco_adamw_1x.py',
    '../_base_/det_runtime.py',
]

model = _base_.det_model
train_dataloader = _base_.det_train_dataloader
val_dataloader = _base_.det_val_dataloader
test_dataloader = _base_.det_test_dataloader
val_evaluator = _base_.det_val_evaluator
test_evaluator = _base_.det_test_evaluator
