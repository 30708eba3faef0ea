from .shared_backbone import BackboneStageCopy, SharedBackbone
from .shared_pvtv2 import SharedPVTv2
from .shared_resnet import SharedResNet
from .shared_swin import SharedSwin
from .task_backbone_view import TaskBackboneView

__all__ = [
    'SharedBackbone', 'BackboneStageCopy', 'SharedPVTv2', 'SharedResNet',
    'SharedSwin', 'TaskBackboneView'
]
