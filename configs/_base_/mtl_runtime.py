# Runtime of the multi-task configs: iteration-based logs and checkpoints,
# the best checkpoint by delta-m, per-task sample counts and losses in the
# logs, and RNG states in checkpoints (exact resume on the CPU).
_base_ = './default_runtime.py'

custom_hooks = [dict(type='TaskMonitorHook'), dict(type='RandomStateHook')]
default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(
        by_epoch=False,
        interval=10000,
        max_keep_ckpts=3,
        save_best='mtl/delta_m',
        rule='greater'))
log_processor = dict(by_epoch=False)
