# DeiT-style AdamW schedule of the PVT v2 paper: lr 1e-3 at a total batch of
# 1024 (5e-4 x 1024 / 512), weight decay 0.05, 300 epochs, cosine decay.
_base_ = 'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py'

# 5 warm-up epochs (the Swin base has 20), then cosine down to 1e-5.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        end=5,
        convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5)
]
