from .multi_task_amp_optim_wrapper import MultiTaskAmpOptimWrapper
from .multi_task_optim_wrapper import MultiTaskOptimWrapper
from .task_gradients import task_parameters

__all__ = [
    'MultiTaskAmpOptimWrapper', 'MultiTaskOptimWrapper', 'task_parameters'
]
