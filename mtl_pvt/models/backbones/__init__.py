from .shared_pvtv2 import SharedPVTv2
from .task_backbone_view import TaskBackboneView

__all__ = ['SharedPVTv2', 'TaskBackboneView']
