# The demo study (`make demo`): PVT v2-b0 on the generated demo data, the
# three sharings of the backbone against the matched single-task baselines
# (same task models, batches, updates, optimiser, schedule and per-task
# clipping, derived from the no-share arm: mtl_pvt.study.matched). The
# arms differ only in model.backbone.share_stages; the full-sharing arm also
# measures the per-stage task affinity (TaskAffinityHook, no change to its
# training), from which `make demo` suggests a tree.
#   python tools/study.py run configs/studies/demo.py
#   python tools/study.py report configs/studies/demo.py
work_dir = 'work_dirs/demo_study'
seeds = [0]
_mtl = 'configs/demo/mtl/'
arms = dict(
    full_share=dict(config=_mtl + 'pvtv2_b0_full_share_affinity_demo.py'),
    partial_share_s2=dict(config=_mtl + 'pvtv2_b0_partial_share_s2_demo.py'),
    no_share=dict(config=_mtl + 'pvtv2_b0_no_share_demo.py'))
stl = dict(matched=True, matched_from='no_share')
# delta-m averages each task's metrics (Vandenhende et al.), each with its
# direction; the first is the task's main metric
metrics = dict(
    cls=['accuracy/top1'],
    det=['coco/bbox_mAP', 'coco/bbox_mAP_50'],
    seg=['mIoU', 'aAcc'])
# the demo images' sizes, for the FLOPs of the report
shapes = dict(cls=64, det=128, seg=128)
