"""Which parameters of a ``MultiTaskModel`` belong to which tasks.

The optimiser wrapper needs, for every parameter, whether one task trains it
(a task model's own parameters, a stage copy of one task) or several (a
stage copy shared by a group of tasks). Shared copies are gathered into
*units*: the parameters over which one aggregation runs, with one gradient
row per task of the unit.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn


@dataclass
class StageCopy:
    """One copy of a backbone stage and the tasks that run it."""
    name: str  # 'stage2' (the only copy of stage 2) or 'stage2.det_seg'
    stage: int
    tasks: Tuple[str, ...]
    params: List[nn.Parameter]
    numel: int = 0


@dataclass
class SharedUnit:
    """Shared stage copies aggregated together (one row per task)."""
    tasks: Tuple[str, ...]
    copies: List[StageCopy]
    params: List[nn.Parameter] = field(default_factory=list)
    # (offset, numel) of each copy in the unit's flat gradient
    spans: List[Tuple[int, int]] = field(default_factory=list)

    @property
    def numel(self) -> int:
        return sum(n for _, n in self.spans)


@dataclass
class TaskParameters:
    """The parameter layout of a multi-task model."""
    tasks: List[str]
    units: List[SharedUnit]
    # task -> parameters that only this task trains
    own: Dict[str, List[nn.Parameter]]
    # every stage copy shared by more than one task, in stage order
    shared_copies: List[StageCopy]

    def last_shared_copy(self) -> StageCopy:
        """The deepest stage copy shared by every task (for GradNorm)."""
        full = [
            c for c in self.shared_copies if set(c.tasks) == set(self.tasks)
        ]
        if not full:
            raise ValueError(
                'no backbone stage is shared by every task '
                f'({self.tasks}): a method that needs the last shared '
                'stage (GradNorm) cannot run on this sharing')
        return full[-1]


def _copy_name(stage: int, key: str, num_copies: int) -> str:
    return f'stage{stage}' if num_copies == 1 else f'stage{stage}.{key}'


def task_parameters(model: nn.Module, per: str = 'task_set') -> TaskParameters:
    """Split the trainable parameters of ``model`` by the tasks that train
    them.

    Args:
        model (nn.Module): A ``MultiTaskModel`` (not a DDP wrapper): it has
            ``task_names``, ``tasks`` (a ModuleDict of task models) and a
            ``SharedBackbone`` ``backbone`` (its ``stage_copies()``).
        per (str): ``'task_set'``: shared copies with the same set of tasks
            form one unit (full sharing: one aggregation over the whole
            shared backbone, as the methods are published);
            ``'stage'``: every shared copy is its own unit. Defaults to
            ``'task_set'``.

    Returns:
        TaskParameters: The layout.
    """
    if per not in ('task_set', 'stage'):
        raise ValueError(f"per must be 'task_set' or 'stage', not {per!r}")
    for attr in ('task_names', 'tasks', 'backbone'):
        if not hasattr(model, attr):
            raise TypeError('MultiTaskOptimWrapper needs a MultiTaskModel '
                            f'(with {attr!r}), not {type(model).__name__}')
    tasks = list(model.task_names)
    own: Dict[str, List[nn.Parameter]] = {t: [] for t in tasks}
    for task in tasks:
        own[task].extend(p for p in model.tasks[task].parameters()
                         if p.requires_grad)
    shared: List[StageCopy] = []
    backbone = model.backbone
    for copy in backbone.stage_copies():
        group = copy.tasks
        params = [p for p in copy.module.parameters() if p.requires_grad]
        if len(group) == 1:
            own[group[0]].extend(params)
            continue
        ordered = tuple(t for t in tasks if t in group)
        shared.append(
            StageCopy(
                _copy_name(copy.stage, copy.key,
                           len(backbone.stage_groups[copy.stage])), copy.stage,
                ordered, params, sum(p.numel() for p in params)))
    units: List[SharedUnit] = []
    for copy in shared:
        unit = next((u for u in units if u.tasks == copy.tasks), None) \
            if per == 'task_set' else None
        if unit is None:
            unit = SharedUnit(copy.tasks, [])
            units.append(unit)
        unit.spans.append((unit.numel, copy.numel))
        unit.copies.append(copy)
        unit.params.extend(copy.params)
    return TaskParameters(tasks, units, own, shared)


def assign_flat_grad(params: Sequence[nn.Parameter],
                     flat: torch.Tensor) -> None:
    """Write a flat gradient back into ``params``' ``.grad``."""
    offset = 0
    for p in params:
        n = p.numel()
        # a view of ``flat``, which the caller made for this purpose
        p.grad = flat[offset:offset + n].view_as(p).to(p.dtype)
        offset += n
