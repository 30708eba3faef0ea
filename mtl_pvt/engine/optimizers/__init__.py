from .multi_task_optim_wrapper import (MultiTaskAmpOptimWrapper,
                                       MultiTaskOptimWrapper)
from .task_gradients import task_parameters

__all__ = [
    'MultiTaskAmpOptimWrapper', 'MultiTaskOptimWrapper', 'task_parameters'
]
