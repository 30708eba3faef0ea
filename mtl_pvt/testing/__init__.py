"""Helpers for tests: synthetic batches and checkpoints in real layouts."""
from .batches import task_batch
from .official_checkpoint import to_official_layout

__all__ = ['task_batch', 'to_official_layout']
