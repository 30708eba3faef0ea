from .multi_task_inferencer import MultiTaskInferencer

__all__ = ['MultiTaskInferencer']
