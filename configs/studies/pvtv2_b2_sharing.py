# The real study on GPU clusters: PVT v2-b2 on ImageNet-1K, COCO and ADE20K,
# the five sharings of configs/mtl against their matched single-task
# baselines (derived from the no-share arm: same batches per task, 90k
# updates, AdamW, schedule and per-task clipping) and against the papers'
# recipes (configs/stl, reported separately), three seeds.
#   python tools/study.py run configs/studies/pvtv2_b2_sharing.py \
#       --launcher slurm --partition PARTITION --gpus 8
#   python tools/study.py report configs/studies/pvtv2_b2_sharing.py
work_dir = 'work_dirs/pvtv2_b2_sharing'
seeds = [0, 1, 2]
_mtl = 'configs/mtl/pvtv2_b2_'
arms = dict(
    full_share=dict(config=_mtl + 'full_share.py'),
    partial_share_s3=dict(config=_mtl + 'partial_share_s3.py'),
    partial_share_s2=dict(config=_mtl + 'partial_share_s2.py'),
    partial_share_s1=dict(config=_mtl + 'partial_share_s1.py'),
    no_share=dict(config=_mtl + 'no_share.py'))
stl = dict(
    matched=True,
    matched_from='no_share',
    reference=dict(
        cls='configs/stl/pvtv2_b2_cls_in1k.py',
        det='configs/stl/pvtv2_b2_retinanet_coco.py',
        seg='configs/stl/pvtv2_b2_semfpn_ade20k.py'))
metrics = dict(
    cls=['accuracy/top1'],
    det=['coco/bbox_mAP', 'coco/bbox_mAP_50'],
    seg=['mIoU', 'aAcc'])
