from mtl_pvt.utils.builder import build_model_from_config
from .multi_task_inferencer import MultiTaskInferencer
from .runner import MultiTaskRunner, build_runner, prepare_config

__all__ = [
    'MultiTaskInferencer', 'MultiTaskRunner', 'build_model_from_config',
    'build_runner', 'prepare_config'
]
