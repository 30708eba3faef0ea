"""The task protocol of loss dicts: which task a loss key belongs to.

``MultiTaskModel.loss()`` prefixes every key of a task model's loss dict with
``'<task>.'``; everything that needs the losses of one task (the optimiser
wrapper's per-task backward, the monitor hook, the report) splits them here,
so the convention lives in one place.
"""
from typing import Dict, Iterable, Mapping, Optional

import torch

# metainfo key of a sample's task
TASK_KEY = 'task'
# attribute of the parsed total loss that carries the per-task sums
_TASK_LOSSES_ATTR = 'task_losses'


def task_of_loss_key(key: str, tasks: Iterable[str]) -> Optional[str]:
    """The task of a ``'<task>.<name>'`` loss key, or None.

    Args:
        key (str): A key of the model's loss dict.
        tasks (Iterable[str]): The model's task names.

    Returns:
        str, optional: The task, None for a key of no task.
    """
    task, dot, _ = key.partition('.')
    return task if dot and task in set(tasks) else None


def split_losses_by_task(losses: Mapping[str, torch.Tensor],
                         tasks: Iterable[str]) -> Dict[str, torch.Tensor]:
    """Sum of each task's loss terms, as ``BaseModel.parse_losses`` sums.

    Only keys that contain ``'loss'`` count (mmengine's convention); a
    value may be a tensor or a list of tensors (summed after their means).

    Args:
        losses (Mapping[str, Tensor]): ``MultiTaskModel.loss()`` output.
        tasks (Iterable[str]): The model's task names.

    Returns:
        dict[str, Tensor]: Task -> its summed loss, for the tasks present,
        in the order of ``losses``.
    """
    tasks = list(tasks)
    result: Dict[str, torch.Tensor] = {}
    for key, value in losses.items():
        task = task_of_loss_key(key, tasks)
        if task is None or 'loss' not in key.partition('.')[2]:
            continue
        if isinstance(value, torch.Tensor):
            term = value.mean()
        else:
            term = sum(v.mean() for v in value)
        result[task] = term if task not in result else result[task] + term
    return result


def attach_task_losses(total: torch.Tensor,
                       task_losses: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Let the parsed total loss carry its per-task parts.

    MMEngine's ``train_step`` passes one tensor from ``parse_losses`` to
    ``optim_wrapper.update_params``. A plain ``OptimWrapper`` backpropagates
    it as always; ``MultiTaskOptimWrapper`` reads the per-task parts with
    :func:`task_losses_of` to weight or aggregate the tasks.
    """
    setattr(total, _TASK_LOSSES_ATTR, dict(task_losses))
    return total


def task_losses_of(total: torch.Tensor) -> Optional[Dict[str, torch.Tensor]]:
    """The per-task parts of a total loss, None when it carries none."""
    return getattr(total, _TASK_LOSSES_ATTR, None)
