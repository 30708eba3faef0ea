# Any standard head plugs in: the b2 multi-task model with Mask R-CNN
# (COCO boxes and masks) as the detection task and UPerNet as the
# segmentation task, and a per-stage task grouping that is neither all nor
# nothing: stages 0-2 shared by all tasks, then classification branches off
# while detection and segmentation still share stage 3.
_base_ = [
    '../_base_/models/pvtv2_b2_cls.py',
    '../_base_/models/pvtv2_b2_mask_rcnn.py',
    '../_base_/models/pvtv2_b2_upernet.py',
    '../_base_/datasets/mtl_in1k_coco_instance_ade20k.py',
    '../_base_/schedules/mtl_joint_90k.py',
    '../_base_/mtl_runtime.py',
]

model = dict(
    type='MultiTaskModel',
    backbone=dict(
        type='SharedPVTv2',
        arch=dict(
            embed_dims=64,
            num_layers=[3, 4, 6, 3],
            mlp_ratios=[8, 8, 4, 4],
            drop_path_rate=0.1),
        stage_groups=[
            [['cls', 'det', 'seg']],
            [['cls', 'det', 'seg']],
            [['cls', 'det', 'seg']],
            [['cls'], ['det', 'seg']],
        ],
        init_cfg=dict(checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b2.pth')),
    tasks=dict(
        cls=_base_.cls_model, det=_base_.det_model, seg=_base_.seg_model),
    loss_weights=dict(cls=1., det=1., seg=1.))

# The PVT v2 paper has no UPerNet number to compute delta-m against: keep
# the latest checkpoints instead of the best by delta-m.
val_cfg = dict(type='MultiTaskValLoop')
test_cfg = dict(type='MultiTaskTestLoop')
default_hooks = dict(checkpoint=dict(save_best=None))
