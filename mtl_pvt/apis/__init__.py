from .builder import build_model_from_config
from .multi_task_inferencer import MultiTaskInferencer

__all__ = ['MultiTaskInferencer', 'build_model_from_config']
