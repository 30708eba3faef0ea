# The three generated demo data sets (tools/misc/make_demo_data.py) as one
# multi-task data set: the task datasets, loaders and evaluators of the STL
# demo configs (the task-named variables of the three demo dataset bases),
# keyed by task.
_base_ = [
    './demo_imagenet.py',
    './demo_coco.py',
    './demo_ade20k.py',
]

# 240 joint steps x (6 cls, 4 det, 8 seg) images = 1440 / 960 / 1920
# samples: 6 epochs of the 240 cls and of the 160 det images, 16 of the
# 120 seg images. The matched single-task baselines (tools/study.py,
# mtl_pvt.study.matched) get the same batches, updates and schedule.
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='MultiTaskSampler', shuffle=True),
    batch_sampler=dict(
        type='MultiTaskBatchSampler',
        mode='joint',
        batch_sizes=dict(cls=6, det=4, seg=8)),
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
