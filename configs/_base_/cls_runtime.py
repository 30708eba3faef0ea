# mmpretrain's visualizer and hook (tools/test.py --show-dir enables it).
_base_ = './default_runtime.py'

default_hooks = dict(
    visualization=dict(type='mmpretrain.VisualizationHook', enable=False))
visualizer = dict(
    type='mmpretrain.UniversalVisualizer',
    vis_backends=_base_.vis_backends,
    name='visualizer')
