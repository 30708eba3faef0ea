"""Per-task gradient clipping: each task's whole gradient by its own norm,
before the tasks are combined (``task_clip_grad`` of the wrapper)."""
from typing import Dict, List

import torch

from .task_rows import TaskRows


def total_norm(tensors: List[torch.Tensor], norm_type: float) -> torch.Tensor:
    """``clip_grad_norm_``'s total norm of ``tensors``: torch's own
    ``get_total_norm`` (torch >= 2.6), else its per-tensor arithmetic."""
    get_total_norm = getattr(torch.nn.utils, 'get_total_norm', None)
    if get_total_norm is not None:
        return get_total_norm(tensors, norm_type)
    return torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g, norm_type) for g in tensors]),
        norm_type)


def clip_per_task(rows: TaskRows,
                  present: List[str],
                  max_norm: float,
                  norm_type: float = 2.,
                  scale: float = 1.) -> Dict[str, float]:
    """Clip each ``present`` task's whole gradient by its own norm; the
    norms before clipping, for the log.

    The arithmetic is ``torch.nn.utils.clip_grad_norm_``'s (its
    ``get_total_norm``: the norm of the per-tensor norms, foreach where the
    device has it; the factor ``max_norm / (norm + 1e-6)`` clamped to 1, as
    a float32 tensor), so a task that shares nothing is clipped bit for
    bit as its single-task run's ``clip_grad``.

    Args:
        scale (float): The loss scale of the own parameters' grads (AMP;
            the rows are unscaled already).
    """
    norms = {}
    for task in present:
        parts = rows.task_parts(task, scale)
        if not parts:
            continue
        norm = total_norm(parts, norm_type)
        norms[task] = float(norm)
        coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        if coef < 1.:
            rows.scale_task(task, coef)
    return norms
