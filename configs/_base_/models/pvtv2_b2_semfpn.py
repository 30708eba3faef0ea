# Semantic FPN (FPN with 256 channels, FPNHead with 128 channels) on a
# PVT v2-b2 backbone, as in the PVT v2 paper's ADE20K experiments.
# 29,116,502 parameters (150 classes).
_base_ = 'mmseg::_base_/models/fpn_r50.py'

model = dict(
    pretrained=None,  # the backbone's init_cfg names its checkpoint
    data_preprocessor=dict(size=(512, 512)),  # pad to the crop size
    backbone=dict(
        _delete_=True,
        type='mmdet.PyramidVisionTransformerV2',
        embed_dims=64,
        num_layers=[3, 4, 6, 3],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
    decode_head=dict(num_classes=150))
