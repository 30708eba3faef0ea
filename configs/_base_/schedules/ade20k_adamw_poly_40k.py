# Semantic FPN schedule of the PVT v2 paper: AdamW (lr 1e-4, weight decay
# 1e-4), poly decay with power 0.9 to zero over 40k iterations of 16 images.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001),
    clip_grad=None)
param_scheduler = [
    # eta_min=0: mmseg's 40k base stops at 1e-4, which here is the base lr.
    dict(
        type='PolyLR',
        eta_min=0.,
        power=0.9,
        begin=0,
        end=40000,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=16)
