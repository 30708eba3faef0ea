# Semantic FPN PVT v2-b2 on ADE20K, 512x512 crops, 40k iterations.
# 4 GPUs x 4 images = 16 images per iteration; 40k x 16 = 640k samples,
# about 32 epochs of ADE20K's 20,210 training images.
# Paper: 45.2 mIoU, 29.1 M parameters.
_base_ = [
    '../_base_/models/pvtv2_b2_semfpn.py',
    '../_base_/datasets/ade20k_512x512.py',
    '../_base_/schedules/ade20k_adamw_poly_40k.py',
    '../_base_/seg_runtime.py',
]

model = _base_.seg_model
train_dataloader = _base_.seg_train_dataloader
val_dataloader = _base_.seg_val_dataloader
test_dataloader = _base_.seg_test_dataloader
val_evaluator = _base_.seg_val_evaluator
test_evaluator = _base_.seg_test_evaluator
