# mmseg's visualizer and hook. Segmentation schedules count iterations, so
# logs and checkpoints do too.
_base_ = './default_runtime.py'

default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=4000),
    visualization=dict(type='mmseg.SegVisualizationHook'))
visualizer = dict(
    type='mmseg.SegLocalVisualizer',
    vis_backends=_base_.vis_backends,
    name='visualizer')
log_processor = dict(by_epoch=False)
