# PVT v2-b2 on ImageNet-1K: the paper's DeiT recipe (RandAugment, mixup,
# cutmix, label smoothing, random erasing, bicubic 224 crops; 256 resize +
# 224 centre crop at test), 8 GPUs x 128 images = the total batch of 1024
# that lr 1e-3 is set for. Paper: 82.0 top-1, 25.4 M parameters.
_base_ = [
    '../_base_/models/pvtv2_b2_cls.py',
    '../_base_/datasets/imagenet_bs128_224.py',
    '../_base_/schedules/imagenet_adamw_300e.py',
    '../_base_/cls_runtime.py',
]

model = _base_.cls_model
train_dataloader = _base_.cls_train_dataloader
val_dataloader = _base_.cls_val_dataloader
test_dataloader = _base_.cls_test_dataloader
val_evaluator = _base_.cls_val_evaluator
test_evaluator = _base_.cls_test_evaluator
default_hooks = dict(logger=dict(interval=100))
