"""Each task's gradient of the shared stage copies, kept apart.

Between a task's backward and the update, the gradient a task leaves on
the shared copies of a *unit* (the parameters one aggregation runs over,
:class:`mtl_pvt.models.task_parameters.TaskParameters`) is moved out of
``.grad`` into that task's row of the unit, so that the next task's
backward starts from zero there. Task-specific parameters keep their
gradient in ``.grad``. This module owns the rows: collecting them, their
DDP reduction together with the other gradients, and the per-task views
the update needs (a task's whole gradient, one stage copy's columns).
"""
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size

from mtl_pvt.models.task_parameters import TaskParameters


class TaskRows:
    """The per-task gradient rows of the shared units of ``layout``.

    Args:
        layout (TaskParameters): Which parameters belong to which tasks.
    """

    def __init__(self, layout: TaskParameters):
        self.layout = layout
        self.rows: Dict[int, torch.Tensor] = {}

    def __contains__(self, unit_index: int) -> bool:
        return unit_index in self.rows

    def clear(self) -> None:
        self.rows.clear()

    def harvest(self, task: str) -> None:
        """Move the task's gradient of the shared copies into its rows."""
        for index, unit in enumerate(self.layout.units):
            if task not in unit.tasks:
                continue
            rows = self.rows.get(index)
            if rows is None:
                rows = unit.params[0].new_zeros(len(unit.tasks), unit.numel)
                self.rows[index] = rows
            row, offset = rows[unit.tasks.index(task)], 0
            for p in unit.params:
                if p.grad is not None:
                    row[offset:offset + p.numel()].add_(p.grad.reshape(-1))
                    p.grad = None
                offset += p.numel()

    def all_reduce(self, present) -> None:
        """Average the rows and every other gradient of the ``present``
        tasks over the ranks, in one all-reduce (DDP's own did not run:
        the forward was under ``no_sync``, or bypassed task by task)."""
        # The same tasks are present on every rank, so zero-filling their
        # parameters' missing gradients makes the lists agree.
        params = [
            p for task, ps in self.layout.own.items() if task in present
            for p in ps
        ] + [
            p for unit in self.layout.units if any(t in present
                                                   for t in unit.tasks)
            for p in unit.params
        ]
        held = {
            id(p)
            for index in self.rows
            for p in self.layout.units[index].params
        }
        for p in params:
            if p.grad is None and id(p) not in held:
                p.grad = torch.zeros_like(p)
        rows = [self.rows[i] for i in sorted(self.rows)]
        grads = [p.grad for p in params if p.grad is not None]
        tensors = rows + grads
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        all_reduce(flat, op='mean')
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def unscale(self, scale: float) -> None:
        """Divide every row by the loss scale (AMP: a power of two)."""
        for rows in self.rows.values():
            rows.div_(scale)

    def nonfinite_tasks(self, present: List[str]) -> List[str]:
        """The ``present`` tasks with a non-finite row, in task order."""
        bad = set()
        for index, rows in self.rows.items():
            unit = self.layout.units[index]
            for i, task in enumerate(unit.tasks):
                if task in present and not torch.isfinite(rows[i]).all():
                    bad.add(task)
        return sorted(bad, key=self.layout.tasks.index)

    def of_unit(self, unit_index: int, present: List[str]) -> torch.Tensor:
        """``G``: the unit's rows of the ``present`` tasks."""
        unit = self.layout.units[unit_index]
        rows = self.rows[unit_index]
        return rows[[unit.tasks.index(t) for t in unit.tasks if t in present]]

    def task_parts(self, task: str, scale: float = 1.) -> List[torch.Tensor]:
        """A task's whole gradient as tensors: its own parameters' grads
        (divided by ``scale``; the rows are unscaled already) and its row
        of each shared unit."""
        parts = [
            p.grad.detach() / scale if scale != 1. else p.grad.detach()
            for p in self.layout.own[task] if p.grad is not None
        ]
        for index, unit in enumerate(self.layout.units):
            if task in unit.tasks and index in self.rows:
                parts.append(self.rows[index][unit.tasks.index(task)])
        return parts

    def scale_task(self, task: str, factor) -> None:
        """Multiply a task's whole gradient (its own parameters' grads and
        its rows of the shared copies) by ``factor``."""
        for p in self.layout.own[task]:
            if p.grad is not None:
                p.grad.mul_(factor)
        for index, unit in enumerate(self.layout.units):
            if task in unit.tasks and index in self.rows:
                self.rows[index][unit.tasks.index(task)].mul_(factor)

    def of_copy(
            self,
            copy_name: str) -> Tuple[Optional[object], Optional[torch.Tensor]]:
        """``(unit, rows restricted to one stage copy's columns)``."""
        for index, unit in enumerate(self.layout.units):
            for copy, (offset, numel) in zip(unit.copies, unit.spans):
                if copy.name == copy_name and index in self.rows:
                    return unit, self.rows[index][:, offset:offset + numel]
        return None, None


def rank_mean(task_losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Detached per-task losses, averaged over the ranks in one
    all-reduce (every rank has the same tasks in a step: joint steps, or
    one task chosen identically on every rank)."""
    values = torch.stack([v.detach().float() for v in task_losses.values()])
    if get_world_size() > 1:
        all_reduce(values, op='mean')
    return dict(zip(task_losses, values.unbind()))
