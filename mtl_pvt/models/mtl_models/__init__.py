from .multi_task_model import MultiTaskModel

__all__ = ['MultiTaskModel']
