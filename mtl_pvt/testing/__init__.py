"""Helpers for tests: synthetic batches and checkpoints in real layouts."""
from .batches import task_batch
from .official_checkpoint import to_official_layout
from .predict import mtl_predict

__all__ = ['mtl_predict', 'task_batch', 'to_official_layout']
