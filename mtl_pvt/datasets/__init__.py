from .multi_task_dataset import MultiTaskDataset
from .samplers import MultiTaskBatchSampler, MultiTaskSampler

__all__ = ['MultiTaskBatchSampler', 'MultiTaskDataset', 'MultiTaskSampler']
