# mmdet's visualizer and hook (tools/test.py --show-dir enables drawing).
_base_ = './default_runtime.py'

default_hooks = dict(visualization=dict(type='mmdet.DetVisualizationHook'))
visualizer = dict(
    type='mmdet.DetLocalVisualizer',
    vis_backends=_base_.vis_backends,
    name='visualizer')
