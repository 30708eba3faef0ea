# Task names are free: two classification tasks and a detection task,
# named after their data sets, on the partial-share demo (PVT v2-b0, stages
# 0-1 shared; its optimiser, schedule and runtime). Each task's kind (cls,
# det: mtl_pvt.tasks) follows from its task model's type
# (mmpretrain.ImageClassifier, mmdet.RetinaNet); a task may also state it,
# `model.task_kinds = dict(places='cls')`. Nothing in the code knows these
# names: training, validation, the report, inference and the export to
# mmpretrain / mmdet configs all go by the kinds.
#
# The demo generator has one classification set, so `places` (a stand-in
# for Places365) reads the demo images that `imnet` reads; with real data
# its loaders would point at Places365 in mmpretrain's CustomDataset layout.
_base_ = './pvtv2_b0_partial_share_s2_demo.py'

# task name -> the demo data set of its kind (the dataset bases name their
# variables by kind: cls_train_dataloader, det_val_evaluator, ...)
_data = dict(imnet='cls', places='cls', coco='det')

model = dict(
    tasks=dict(
        _delete_=True,
        imnet=_base_.cls_model,
        places=_base_.cls_model,
        coco=_base_.det_model),
    loss_weights=dict(_delete_=True, imnet=1., places=1., coco=1.))
train_dataloader = dict(
    batch_sampler=dict(
        batch_sizes=dict(_delete_=True, imnet=6, places=6, coco=4)),
    dataset=dict(datasets={
        '_delete_': True,
        **{t: _base_[f'{d}_train_dataloader'].dataset
           for t, d in _data.items()}
    }))
val_dataloader = {
    '_delete_': True,
    **{t: _base_[f'{d}_val_dataloader'] for t, d in _data.items()}
}
test_dataloader = {
    '_delete_': True,
    **{t: _base_[f'{d}_test_dataloader'] for t, d in _data.items()}
}
val_evaluator = {
    '_delete_': True,
    **{t: _base_[f'{d}_val_evaluator'] for t, d in _data.items()}
}
test_evaluator = {
    '_delete_': True,
    **{t: _base_[f'{d}_test_evaluator'] for t, d in _data.items()}
}

# no single-task references yet: no delta-m; the best checkpoint by imnet's
# top-1
delta_m = None
val_cfg = dict(_delete_=True, type='MultiTaskValLoop')
test_cfg = dict(_delete_=True, type='MultiTaskTestLoop')
default_hooks = dict(
    checkpoint=dict(save_best='imnet/accuracy/top1', rule='greater'))
