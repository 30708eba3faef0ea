# RetinaNet with a Swin-T backbone and FPN: the model of mmdet's
# `swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py`, which is its ResNet-50
# RetinaNet (./resnet50_retinanet.py) with the backbone swapped and stages
# 1-3 into the FPN; 38,458,606 parameters, checked in
# tests/test_configs.py. mmdet publishes no box AP for it: the study's own
# single-task run is its reference.
_base_ = './resnet50_retinanet.py'

det_model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdet.SwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/SwinTransformer/storage/releases/'
            'download/v1.0.0/swin_tiny_patch4_window7_224.pth')),
    neck=dict(in_channels=[192, 384, 768], start_level=0))
