from mtl_pvt.models.task_parameters import task_parameters
from .multi_task_amp_optim_wrapper import MultiTaskAmpOptimWrapper
from .multi_task_optim_wrapper import MultiTaskOptimWrapper

__all__ = [
    'MultiTaskAmpOptimWrapper', 'MultiTaskOptimWrapper', 'task_parameters'
]
