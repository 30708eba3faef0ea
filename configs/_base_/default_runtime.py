# Runtime shared by every mtl_pvt config. Modules of mmdet, mmseg and
# mmpretrain are reached by scope prefix or by the `_scope_` that their
# package bases carry; the task runtimes (cls/det/seg_runtime.py) add each
# library's visualizer on top of this file.
default_scope = 'mtl_pvt'
# mmengine's Runner with the config checked, short schedules fitted, a
# load_from of another layout converted and the distributed set-up made
# before it exists: the same run from tools/train.py, RUNNERS.build(cfg)
# (the OpenMMLab tools, mim) and MultiTaskRunner.from_cfg(cfg)
runner_type = 'mtl_pvt.MultiTaskRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook, written atomically, never with NaN
    # weights, a save_best that survives a skipped metric, and a report of
    # how a loaded checkpoint fits the model
    checkpoint=dict(type='MultiTaskCheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # SIGTERM / SIGUSR1 (Slurm's preemption or time limit): a checkpoint of
    # the current iteration, then exit code 75; --resume continues the run
    preemption=dict(type='PreemptionHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo on machines without CUDA.
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
