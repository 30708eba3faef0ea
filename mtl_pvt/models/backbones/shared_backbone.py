"""A staged library backbone whose stages are shared by groups of tasks.

:class:`SharedBackbone` is all that the rest of mtl_pvt knows about
sharing: the tasks, each task's path of stage copies, the copies and the
tasks that run them, the channels each task receives, the mapping to and
from the state dict of the plain single-task backbone, and the stage
probing of the affinity measurement. An implementation names the library
class it reuses and says which of that class's modules make each stage
(:meth:`SharedBackbone.stage_parts`) and how a stage runs
(:meth:`SharedBackbone.run_stage`); ``SharedPVTv2``, ``SharedResNet`` and
``SharedSwin`` are the three of this package::

    plain library backbone (template) --stage_parts--> stage modules
        -> deep copies: stages[i][group key]  (one per group of tasks)
    forward(x, task): run_stage over task_stages(task)
        -> stage_feature of the stages in out_indices[task]
"""
import copy
import logging
from contextlib import contextmanager
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.registry import MODELS as MMENGINE_MODELS

from .sharing_tree import (check_stage_groups, group_key, key_tasks,
                           share_stages_groups)
from .stage_state_dicts import COPIES, StageStateDicts, StateDict

# (name of the part in a stage copy or None for a one-part stage, the
# module's path in the plain backbone)
Part = Tuple[Optional[str], str]
__all__ = [
    'SharedBackbone', 'BackboneStageCopy', 'Part', 'StateDict', 'COPIES',
    'check_stage_groups', 'group_key', 'key_tasks', 'share_stages_groups'
]


@contextmanager
def _without_init_info() -> Iterator[None]:
    """No INFO records of the current logger within the context: mmengine
    dumps every parameter's initialisation of a top-level module, and the
    plain backbone that seeds the copies is one (the model's own dump
    lists the copies)."""

    def drop_info(record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO

    logger = MMLogger.get_current_instance()
    logger.addFilter(drop_info)
    try:
        yield
    finally:
        logger.removeFilter(drop_info)


class BackboneStageCopy(NamedTuple):
    """One copy of one stage: its stage, the tasks that run it, its name in
    ``stages[stage]`` and the module."""
    stage: int
    tasks: List[str]
    key: str
    module: nn.Module


class SharedBackbone(StageStateDicts, BaseModule):
    """Base of the backbones whose stages are shared by groups of tasks.

    Stage ``i`` exists once per group of tasks in ``stage_groups[i]``, in
    ``self.stages[i][group key]``, as a deep copy of the modules of one
    plain library backbone that :meth:`stage_parts` names.
    ``share_stages=k`` is the common case: stages ``0..k-1`` are shared by
    all tasks, the later ones copied per task. :meth:`init_weights`
    initialises (or loads) one plain backbone and copies each of its
    stages into every copy, so all copies of a stage start equal.

    A subclass sets :attr:`plain_type` (the library class, a registry
    name) and :attr:`num_stages`, and implements :meth:`stage_parts`,
    :meth:`run_stage` and :meth:`plain_channels`; :meth:`stage_feature`
    (what a task receives of a stage's output) defaults to the output
    itself.

    Args:
        tasks (Sequence[str]): Task names.
        arch (dict, optional): Arguments of the plain library backbone,
            without ``out_indices`` and ``init_cfg``. Defaults to the
            subclass's :attr:`default_arch`.
        share_stages (int, optional): Number of leading stages shared by all
            tasks. Give this or ``stage_groups``. Defaults to None.
        stage_groups (Sequence[Sequence[Sequence[str]]], optional): For each
            stage, the groups of tasks that share a copy of it. Defaults to
            None.
        out_indices (dict[str, Sequence[int]], optional): Stages whose
            outputs each task receives. Defaults to all for every task.
        init_cfg (dict, optional): The plain backbone's ``init_cfg``
            (``dict(type='Pretrained', checkpoint=...)`` or
            ``dict(checkpoint=...)``), applied to every copy. Defaults to
            None.
    """

    plain_type: str = ''
    num_stages: int = 4
    default_arch: dict = {}

    def __init__(self,
                 tasks: Sequence[str],
                 arch: Optional[dict] = None,
                 share_stages: Optional[int] = None,
                 stage_groups: Optional[Sequence] = None,
                 out_indices: Optional[Dict[str, Sequence[int]]] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=None)
        name = type(self).__name__
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError(f'{name} needs at least one task')
        if (share_stages is None) == (stage_groups is None):
            raise ValueError('give exactly one of share_stages and '
                             'stage_groups')
        if stage_groups is None:
            stage_groups = share_stages_groups(self.tasks, share_stages,
                                               self.num_stages)
        check_stage_groups(self.tasks, stage_groups, self.num_stages)
        self.stage_groups = [[list(g) for g in groups]
                             for groups in stage_groups]
        self.out_indices = self._check_out_indices(out_indices or {})
        self.arch = dict(
            copy.deepcopy(self.default_arch) if arch is None else arch)
        self.check_arch(self.arch)
        self.pretrained_cfg = copy.deepcopy(init_cfg)

        template = self._build_plain()
        self.num_channels = list(self.plain_channels(template))
        self._parts = [
            self.stage_parts(template, i) for i in range(self.num_stages)
        ]
        self.stages = nn.ModuleList()
        for i, groups in enumerate(self.stage_groups):
            self.stages.append(
                nn.ModuleDict({
                    group_key(g):
                    self._make_stage(template, i, self._copy_parts(i, g))
                    for g in groups
                }))
        # (input, features by task) while in :meth:`reuse_features`
        self._reused = None
        # (input, record, resume) while in :meth:`probe_stages`
        self._probe = None

    # --- what an implementation says -----------------------------------
    @classmethod
    def stage_parts(cls, plain: nn.Module, stage: int) -> List[Part]:
        """The modules of ``plain`` that make stage ``stage``.

        Returns:
            list[tuple]: ``(part name, module path in plain)`` pairs; a
            stage of one part may name it ``None``: its copy is then that
            module itself (state-dict keys ``stages.{i}.{copy}.{rest}``),
            else a ``ModuleDict`` of the parts (``...{copy}.{part}.{rest}``).
        """
        raise NotImplementedError

    @classmethod
    def run_stage(cls, stage: int, module: nn.Module,
                  x: torch.Tensor) -> torch.Tensor:
        """Run stage ``stage`` (a copy, or a plain backbone's parts) on the
        previous stage's output (the image for stage 0)."""
        raise NotImplementedError

    @classmethod
    def stage_feature(cls, stage: int, module: nn.Module,
                      y: torch.Tensor) -> torch.Tensor:
        """The NCHW map a task receives of stage ``stage``'s output ``y``
        (as the plain backbone returns it). Defaults to ``y``."""
        return y

    @classmethod
    def plain_channels(cls, plain: nn.Module) -> List[int]:
        """Channels of each stage's feature map of a plain backbone."""
        raise NotImplementedError

    def check_arch(self, arch: dict) -> None:
        """Raise on an ``arch`` this implementation cannot share."""

    def part_is_used(self, stage: int, name: Optional[str],
                     tasks: Sequence[str]) -> bool:
        """Whether a copy of ``stage`` run by ``tasks`` holds part ``name``
        (e.g. a norm only some tasks' outputs pass). Defaults to True."""
        return True

    @classmethod
    def official_to_plain(cls,
                          state: StateDict) -> Tuple[StateDict, StateDict]:
        """Split a checkpoint of the backbone's official release into the
        plain backbone's keys and a classification head as mmpretrain's
        ``LinearClsHead`` names it (``head.fc.*``)."""
        raise ValueError(f'{cls.__name__} reads no official checkpoint: '
                         'give single-task checkpoints instead')

    # --- the plain backbone ---------------------------------------------
    def plain_cfg(self,
                  task: Optional[str] = None,
                  init_cfg: Optional[dict] = None) -> dict:
        """Config of the plain library backbone of ``arch``: the outputs of
        ``task`` (all stages without a task), no init_cfg unless given."""
        indices = self.out_indices[task] if task is not None else \
            tuple(range(self.num_stages))
        return dict(
            type=self.plain_type,
            **copy.deepcopy(self.arch),
            out_indices=tuple(indices),
            init_cfg=init_cfg)

    def _build_plain(self, init_cfg=None) -> nn.Module:
        """One plain library backbone of ``arch`` with every stage output."""
        # mmdet's PVT reads init_cfg.checkpoint as an attribute
        cfg = self.plain_cfg(
            init_cfg=ConfigDict(init_cfg) if init_cfg else None)
        return MMENGINE_MODELS.build(cfg)

    @classmethod
    def plain_class(cls) -> type:
        """The library class that :attr:`plain_type` names."""
        scope, _, name = cls.plain_type.rpartition('.')
        return MMENGINE_MODELS.get(f'{scope}.{name}' if scope else name)

    @staticmethod
    def implementation_for(module: nn.Module) -> Optional[type]:
        """The ``SharedBackbone`` class whose plain backbone ``module`` is
        (an instance of its library class or of a subclass, as mmdet's
        ``ResNetV1d`` is a ``ResNet``), else None."""
        todo, found = list(SharedBackbone.__subclasses__()), []
        while todo:
            cls = todo.pop(0)
            todo += cls.__subclasses__()
            if cls.plain_type and isinstance(module, cls.plain_class()):
                found.append(cls)
        # the most specific library class
        found.sort(key=lambda c: -len(c.plain_class().__mro__))
        return found[0] if found else None

    @classmethod
    def plain_stages(cls, plain: nn.Module) -> List[nn.Module]:
        """The stages of a plain backbone, as :meth:`run_stage` takes them
        (its own modules, not copies)."""

        def has(path):
            try:
                plain.get_submodule(path)
            except AttributeError:
                return False
            return True

        # a part that the plain backbone's out_indices left out (a norm)
        return [
            cls._make_stage(
                plain,
                i, [p for p in cls.stage_parts(plain, i) if has(p[1])],
                clone=False) for i in range(cls.num_stages)
        ]

    @staticmethod
    def _make_stage(plain: nn.Module,
                    stage: int,
                    parts: Sequence[Part],
                    clone: bool = True) -> nn.Module:
        take = copy.deepcopy if clone else (lambda m: m)
        if len(parts) == 1 and parts[0][0] is None:
            return take(plain.get_submodule(parts[0][1]))
        return nn.ModuleDict({
            name: take(plain.get_submodule(path))
            for name, path in parts
        })

    def _copy_parts(self, stage: int, group: Sequence[str]) -> List[Part]:
        return [(name, path) for name, path in self._parts[stage]
                if self.part_is_used(stage, name, group)]

    def _check_out_indices(self, out_indices):
        unknown = sorted(set(out_indices) - set(self.tasks))
        if unknown:
            raise ValueError(f'out_indices names unknown task(s) {unknown} '
                             f'(tasks: {self.tasks})')
        result = {}
        n = self.num_stages
        for task in self.tasks:
            indices = tuple(out_indices.get(task, range(n)))
            if not indices or any(i not in range(n) for i in indices):
                raise ValueError(f'out_indices of task {task!r} must be '
                                 f'stage indices in 0..{n - 1}, but got '
                                 f'{indices}')
            result[task] = indices
        return result

    def init_weights(self) -> None:
        """Initialise one plain backbone and copy it into every copy.

        With ``init_cfg`` that plain backbone loads the checkpoint (as its
        library does, converting an official key layout); without, it is
        the library's random initialisation. Either way all copies of a
        stage start equal.
        """
        plain = self._build_plain(self.pretrained_cfg)
        with _without_init_info():
            plain.init_weights()
        state = plain.state_dict()
        for i, copies in enumerate(self.stages):
            for key, module in copies.items():
                module.load_state_dict(self.stage_state(state, i, key))
        self._is_init = True

    # --- the layout -------------------------------------------------------
    def sharing_tree(self) -> List[List[List[str]]]:
        """For each stage, its groups of tasks (``stage_groups``)."""
        return [[list(g) for g in groups] for groups in self.stage_groups]

    def stage_copies(self) -> List[BackboneStageCopy]:
        """Every stage copy, stage 0 first, in ``stage_groups`` order."""
        return [
            BackboneStageCopy(i, list(g), group_key(g), copies[group_key(g)])
            for i, (copies,
                    groups) in enumerate(zip(self.stages, self.stage_groups))
            for g in groups
        ]

    def copy_name(self, stage: int, key: str) -> str:
        """State-dict prefix of a copy: ``'stages.{stage}.{key}'``."""
        return f'{COPIES}.{stage}.{key}'

    def task_stages(self, task: str) -> List[Tuple[str, nn.Module]]:
        """The (copy name, stage) pairs on ``task``'s path, stage 0 first."""
        return [(key, copies[key])
                for copies, groups in zip(self.stages, self.stage_groups)
                for key in [group_key(g) for g in groups if task in g]]

    def out_channels(self, task: str) -> List[int]:
        """Channels of the feature maps that ``task`` receives."""
        return [self.num_channels[i] for i in self.out_indices[task]]

    # --- forward ----------------------------------------------------------
    def forward(self, x: torch.Tensor, task: str) -> Tuple[torch.Tensor]:
        """Run ``task``'s path on ``x``.

        Returns:
            tuple[Tensor]: NCHW maps of the stages in ``out_indices[task]``.
        """
        if task not in self.out_indices:
            raise KeyError(f'unknown task {task!r} (tasks: {self.tasks})')
        if self._reused is not None and x is self._reused[0] \
                and task in self._reused[1]:
            return self._reused[1][task]
        path = self.task_stages(task)
        start, stage_outs = 0, []
        probe = self._probe if self._probe is not None and \
            x is self._probe[0] else None
        if probe is not None and task in probe[2]:
            start, cached = probe[2][task]
            stage_outs = list(cached[:start])
            x = stage_outs[-1] if start else x
        for i, (_, stage) in enumerate(path):
            if i >= start:
                x = self.run_stage(i, stage, x)
                stage_outs.append(x)
        if probe is not None and probe[1] is not None:
            probe[1][task] = [y.detach() for y in stage_outs]
        return tuple(
            self.stage_feature(i, path[i][1], y)
            for i, y in enumerate(stage_outs) if i in self.out_indices[task])

    def forward_tasks(self, x: torch.Tensor,
                      tasks: Sequence[str]) -> Dict[str, Tuple[torch.Tensor]]:
        """Run the paths of several tasks on the same ``x``, each stage copy
        once (for multi-task inference on one image).

        Returns:
            dict[str, tuple[Tensor]]: Each task's :meth:`forward` output.
        """
        feats = {task: x for task in tasks}  # current map of each task
        outs = {task: [] for task in tasks}
        for i, groups in enumerate(self.stage_groups):
            for group in groups:
                members = [t for t in group if t in feats]
                if not members:
                    continue
                module = self.stages[i][group_key(group)]
                y = self.run_stage(i, module, feats[members[0]])
                for task in members:
                    feats[task] = y
                    if i in self.out_indices[task]:
                        outs[task].append(self.stage_feature(i, module, y))
        return {task: tuple(outs[task]) for task in tasks}

    @contextmanager
    def reuse_features(
            self, x: torch.Tensor,
            feats: Dict[str, Tuple[torch.Tensor]]) -> Iterator[None]:
        """Within the context, ``forward(x, task)`` returns ``feats[task]``.

        Only a call with this very tensor ``x`` (an identity test) and a
        task in ``feats`` is answered from ``feats``; any other call runs
        the stages as usual. The task models' own ``predict()`` can so run
        on the features that :meth:`forward_tasks` computed with each stage
        copy once:

        Examples:
            >>> feats = backbone.forward_tasks(x, ['det', 'seg'])
            >>> with backbone.reuse_features(x, feats):
            ...     det = model.tasks['det'].predict(x, det_samples)
            ...     seg = model.tasks['seg'].predict(x, seg_samples)

        Args:
            x (Tensor): The input that ``feats`` were computed from.
            feats (dict[str, tuple[Tensor]]): Output of
                :meth:`forward_tasks` on ``x``.
        """
        previous, self._reused = self._reused, (x, feats)
        try:
            yield
        finally:
            self._reused = previous

    @contextmanager
    def probe_stages(
        self,
        x: torch.Tensor,
        record: Optional[Dict[str, List[torch.Tensor]]] = None,
        resume: Optional[Dict[str, Tuple[int, Sequence[torch.Tensor]]]] = None
    ) -> Iterator[None]:
        """Record a task path's stage outputs, or rerun it from a stage.

        Within the context, ``forward(x, task)`` (an identity test on
        ``x``, as in :meth:`reuse_features`) stores the (detached) outputs
        of all stages of ``task``'s path in ``record[task]``; when
        ``resume[task] = (s, outputs)``, it takes the outputs of stages
        ``0..s-1`` from ``outputs`` and runs stages ``s..`` only. A
        lookahead that changed stage ``s`` so needs no rerun of the stages
        below it (:class:`~mtl_pvt.engine.TaskAffinityHook`).

        Args:
            x (Tensor): The input of the forwards to probe.
            record (dict, optional): Filled with task -> stage outputs.
            resume (dict, optional): Task -> (first stage to run, stage
                outputs of an earlier recorded forward of ``x``).
        """
        previous, self._probe = self._probe, (x, record, resume or {})
        try:
            yield
        finally:
            self._probe = previous
