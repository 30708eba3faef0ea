"""Helpers for tests: synthetic batches and checkpoints in real layouts."""
from .batches import task_batch
from .official_checkpoint import to_official_layout
from .predict import mtl_predict
from .tiny_mtl import make_mtl_batch, make_mtl_model

__all__ = [
    'make_mtl_batch', 'make_mtl_model', 'mtl_predict', 'task_batch',
    'to_official_layout'
]
