from .multi_task_sampler import MultiTaskBatchSampler, MultiTaskSampler

__all__ = ['MultiTaskBatchSampler', 'MultiTaskSampler']
