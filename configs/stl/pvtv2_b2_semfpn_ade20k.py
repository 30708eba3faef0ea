# Semantic FPN PVT v2-b2 on ADE20K, 512x512 crops, 40k iterations.
# 4 GPUs x 4 images = 16 images per iteration; 40k x 16 = 640k samples,
# about 32 epochs of ADE20K's 20,210 training images.
# Paper: 45.2 mIoU, 29.1 M parameters.
_base_ = [
    '../_base_/models/pvtv2_b2_semfpn.py',
    'mmseg::_base_/datasets/ade20k.py',
    '../_base_/schedules/ade20k_adamw_poly_40k.py',
    '../_base_/seg_runtime.py',
]

model = _base_.seg_model
