# ImageNet-1K classification, COCO detection and ADE20K segmentation as one
# multi-task data set: the task datasets, loaders and evaluators of the STL
# baselines (the task-named variables of the three dataset bases), keyed by
# task. A multi-task config adds its task models, schedule and runtime.
_base_ = [
    './imagenet_bs128_224.py',
    './coco_detection.py',
    './ade20k_512x512.py',
]

# Joint steps on 8 GPUs: every step holds 8 x 32 ImageNet crops, 8 x 2 COCO
# images (mmdet's 1x batch) and 8 x 2 ADE20K crops. The 90k steps of
# schedules/mtl_joint_90k.py are 12 COCO epochs (90k x 16 / 117k, the 1x
# schedule), 71 ADE20K epochs and 18 ImageNet epochs (the backbone starts
# from ImageNet weights).
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='MultiTaskSampler', shuffle=True),
    batch_sampler=dict(
        type='MultiTaskBatchSampler',
        mode='joint',
        batch_sizes=dict(cls=32, det=2, seg=2)),
    dataset=dict(
        type='MultiTaskDataset',
        datasets=dict(
            cls=_base_.cls_train_dataloader.dataset,
            det=_base_.det_train_dataloader.dataset,
            seg=_base_.seg_train_dataloader.dataset)))
val_dataloader = dict(
    cls=_base_.cls_val_dataloader,
    det=_base_.det_val_dataloader,
    seg=_base_.seg_val_dataloader)
test_dataloader = dict(
    cls=_base_.cls_test_dataloader,
    det=_base_.det_test_dataloader,
    seg=_base_.seg_test_dataloader)
val_evaluator = dict(
    cls=_base_.cls_val_evaluator,
    det=_base_.det_val_evaluator,
    seg=_base_.seg_val_evaluator)
test_evaluator = dict(
    cls=_base_.cls_test_evaluator,
    det=_base_.det_test_evaluator,
    seg=_base_.seg_test_evaluator)
