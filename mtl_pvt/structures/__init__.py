from .meta import to_plain_meta
from .task import (MTL_PREFIX, TASK_KEY, check_task_name, is_task_dict,
                   sample_task, split_losses_by_task, tag_task,
                   task_of_loss_key)

__all__ = [
    'MTL_PREFIX', 'TASK_KEY', 'check_task_name', 'is_task_dict', 'sample_task',
    'split_losses_by_task', 'tag_task', 'task_of_loss_key', 'to_plain_meta'
]
