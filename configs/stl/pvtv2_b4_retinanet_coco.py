# RetinaNet PVT v2-b4 on COCO, 1x: mmdet's
# `pvt/retinanet_pvtv2-b4_fpn_1x_coco.py`.
_base_ = './pvtv2_b2_retinanet_coco.py'

model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[3, 8, 27, 3],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b4.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))

# As mmdet's b4/b5 configs: 8 GPUs x 1 image, lr 1e-4 / 1.4.
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=0.0001 / 1.4, weight_decay=0.0001))
train_dataloader = dict(batch_size=1, num_workers=1)
auto_scale_lr = dict(base_batch_size=8)
