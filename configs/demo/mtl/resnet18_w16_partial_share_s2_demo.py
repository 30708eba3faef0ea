# The demo study on another backbone: the three demo task models of
# configs/demo/mtl/pvtv2_b0_full_share_demo.py on mmdet's ResNet-18 at a
# quarter of its width (16 base channels: stage channels 16, 32, 64, 128),
# stages 0-1 (stem + layer1, layer2) shared and 2-3 per task, trained on the
# generated demo data on the CPU. Each task model's backbone entry is the
# plain ResNet it would have alone: SharedResNet takes its out_indices, and
# mtl2stl exports the branch with that backbone.
_base_ = './pvtv2_b0_full_share_demo.py'

resnet = dict(
    type='mmdet.ResNet',
    depth=18,
    base_channels=16,
    stem_channels=16,
    # a multi-task model with a classifier trains every BN layer and stage
    # (mmpretrain's recipe; mmdet's detectors freeze them)
    norm_eval=False,
    frozen_stages=-1)
channels = [16, 32, 64, 128]

model = dict(
    backbone=dict(
        _delete_=True,
        type='SharedResNet',
        arch={
            k: v
            for k, v in resnet.items() if k != 'type'
        },
        share_stages=2),
    tasks=dict(
        cls=dict(
            backbone=dict(_delete_=True, **resnet, out_indices=(3, )),
            head=dict(in_channels=channels[-1])),
        det=dict(
            backbone=dict(_delete_=True, **resnet, out_indices=(0, 1, 2, 3)),
            neck=dict(in_channels=channels)),
        seg=dict(
            backbone=dict(_delete_=True, **resnet, out_indices=(0, 1, 2, 3)),
            neck=dict(in_channels=channels))))
