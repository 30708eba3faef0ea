"""PVT v2 whose stages are shared by groups of tasks."""
import copy
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.models.layers import nlc_to_nchw
from mmengine.config import ConfigDict
from mmengine.model import BaseModule
from mmengine.registry import MODELS as MMENGINE_MODELS

from mtl_pvt.registry import MODELS

NUM_STAGES = 4


def share_stages_groups(tasks: Sequence[str],
                        share_stages: int) -> List[List[List[str]]]:
    """Task groups per stage for "the first ``share_stages`` are shared".

    Args:
        tasks (Sequence[str]): Task names.
        share_stages (int): Number of leading stages that all tasks share,
            0 (separate backbones) to 4 (full sharing).

    Returns:
        list[list[list[str]]]: For each stage, its groups of tasks.
    """
    if not isinstance(share_stages, int) or not \
            0 <= share_stages <= NUM_STAGES:
        raise ValueError('share_stages must be an int from 0 (separate '
                         f'backbones) to {NUM_STAGES} (full sharing), but '
                         f'got {share_stages!r}')
    return [[list(tasks)] if i < share_stages else [[t] for t in tasks]
            for i in range(NUM_STAGES)]


def check_stage_groups(tasks: Sequence[str],
                       stage_groups: Sequence[Sequence[Sequence[str]]]):
    """Check that ``stage_groups`` is a tree over ``tasks``.

    Every stage must hold every task exactly once, and a group may only
    split, never merge, from one stage to the next (its input comes from one
    group of the stage before).

    Raises:
        ValueError: Naming the stage and the task or group at fault.
    """
    if len(stage_groups) != NUM_STAGES:
        raise ValueError(f'stage_groups needs one entry per stage '
                         f'({NUM_STAGES}), but got {len(stage_groups)}')
    parent_of = {}
    for i, groups in enumerate(stage_groups):
        seen = [t for group in groups for t in group]
        missing = [t for t in tasks if t not in seen]
        if missing:
            raise ValueError(f'stage_groups[{i}] leaves task(s) {missing} '
                             f'without stage {i}: {list(map(list, groups))}')
        extra = sorted(
            {t
             for t in seen if t not in tasks or seen.count(t) > 1})
        if extra:
            raise ValueError(f'stage_groups[{i}] names task(s) {extra} that '
                             f'are unknown or appear twice (tasks: '
                             f'{list(tasks)})')
        for group in groups:
            parents = {parent_of[t] for t in group} if i else {None}
            if len(parents) > 1:
                raise ValueError(
                    f'stage_groups[{i}] group {list(group)} merges tasks '
                    f'that run on different copies of stage {i - 1}')
        parent_of = {t: group_key(group) for group in groups for t in group}


def group_key(group: Sequence[str]) -> str:
    """Name of a stage copy: its tasks joined by ``'_'``."""
    return '_'.join(group)


@MODELS.register_module()
class SharedPVTv2(BaseModule):
    """mmdet's ``PyramidVisionTransformerV2`` with stages shared by tasks.

    Stage ``i`` (patch embedding, blocks and norm, ``layers[i]`` of mmdet's
    backbone) exists once per group of tasks in ``stage_groups[i]``, in
    ``self.stages[i][group_key(group)]``. ``share_stages=k`` is the common
    case: stages ``0..k-1`` are shared by all tasks, stages ``k..3`` are
    copied per task. Each copy is a deep copy of one mmdet backbone, so the
    stochastic depth rate of every block is that of the plain backbone, and
    :meth:`init_weights` initialises all copies of a stage from one
    initialised (or pretrained) backbone.

    Examples:
        >>> backbone = dict(
        ...     type='SharedPVTv2',
        ...     tasks=['cls', 'det', 'seg'],
        ...     arch=dict(embed_dims=64, num_layers=[3, 4, 6, 3]),
        ...     share_stages=2,  # stages 0-1 shared, 2-3 per task
        ...     out_indices=dict(cls=(3, ), det=(0, 1, 2, 3),
        ...                      seg=(0, 1, 2, 3)),
        ...     init_cfg=dict(checkpoint='pvt_v2_b2.pth'))
        >>> # cls branches off after stage 2; det and seg share stage 3:
        >>> stage_groups = [[['cls', 'det', 'seg']]] * 3 + [[['cls'],
        ...                                                 ['det', 'seg']]]

    Args:
        tasks (Sequence[str]): Task names.
        arch (dict): Arguments of mmdet's ``PyramidVisionTransformerV2``
            (``embed_dims``, ``num_layers``, ``mlp_ratios``,
            ``drop_path_rate``...), without ``out_indices`` and
            ``init_cfg``. Defaults to b2.
        share_stages (int, optional): Number of leading stages shared by all
            tasks. Give this or ``stage_groups``. Defaults to None.
        stage_groups (Sequence[Sequence[Sequence[str]]], optional): For each
            of the 4 stages, the groups of tasks that share a copy of it.
            Defaults to None.
        out_indices (dict[str, Sequence[int]], optional): Stages whose
            outputs each task receives. Defaults to all four for every task.
        init_cfg (dict, optional): The backbone's ``init_cfg`` as mmdet's
            takes it (``dict(checkpoint=...)``, official PVT v2 key layout
            converted on load); applied to every copy. Defaults to None.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 arch: Optional[dict] = None,
                 share_stages: Optional[int] = None,
                 stage_groups: Optional[Sequence] = None,
                 out_indices: Optional[Dict[str, Sequence[int]]] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=None)
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError('SharedPVTv2 needs at least one task')
        if (share_stages is None) == (stage_groups is None):
            raise ValueError('give exactly one of share_stages and '
                             'stage_groups')
        if stage_groups is None:
            stage_groups = share_stages_groups(self.tasks, share_stages)
        check_stage_groups(self.tasks, stage_groups)
        self.stage_groups = [[list(g) for g in groups]
                             for groups in stage_groups]
        self.out_indices = self._check_out_indices(out_indices or {})
        self.arch = dict(arch or {})
        self.pretrained_cfg = copy.deepcopy(init_cfg)

        template = self._build_plain()
        self.num_channels = [
            template.embed_dims * h for h in template.num_heads
        ]
        self.stages = nn.ModuleList()
        for i, groups in enumerate(self.stage_groups):
            self.stages.append(
                nn.ModuleDict({
                    group_key(g): copy.deepcopy(template.layers[i])
                    for g in groups
                }))
        # (input, features by task) while in :meth:`reuse_features`
        self._reused = None
        # (input, record, resume) while in :meth:`probe_stages`
        self._probe = None

    def _check_out_indices(self, out_indices):
        unknown = sorted(set(out_indices) - set(self.tasks))
        if unknown:
            raise ValueError(f'out_indices names unknown task(s) {unknown} '
                             f'(tasks: {self.tasks})')
        result = {}
        for task in self.tasks:
            indices = tuple(out_indices.get(task, range(NUM_STAGES)))
            if not indices or any(i not in range(NUM_STAGES) for i in indices):
                raise ValueError(f'out_indices of task {task!r} must be '
                                 f'stage indices in 0..{NUM_STAGES - 1}, '
                                 f'but got {indices}')
            result[task] = indices
        return result

    def _build_plain(self, init_cfg=None) -> nn.Module:
        """One plain mmdet ``PyramidVisionTransformerV2`` of ``arch``."""
        # mmdet reads init_cfg.checkpoint as an attribute
        cfg = dict(
            type='mmdet.PyramidVisionTransformerV2',
            **self.arch,
            init_cfg=ConfigDict(init_cfg) if init_cfg else None)
        return MMENGINE_MODELS.build(cfg)

    def init_weights(self) -> None:
        """Initialise one plain backbone and copy it into every copy.

        With ``init_cfg`` that plain backbone loads the checkpoint (mmdet
        converts the official key layout); without, it is mmdet's random
        initialisation. Either way all copies of a stage start equal.
        """
        plain = self._build_plain(self.pretrained_cfg)
        plain.init_weights()
        for i, copies in enumerate(self.stages):
            state = plain.layers[i].state_dict()
            for stage in copies.values():
                stage.load_state_dict(state)
        self._is_init = True

    def sharing_tree(self) -> List[List[List[str]]]:
        """For each stage, its groups of tasks (``stage_groups``)."""
        return [[list(g) for g in groups] for groups in self.stage_groups]

    def task_stages(self, task: str) -> List[Tuple[str, nn.Module]]:
        """The (copy name, stage) pairs on ``task``'s path, stage 0 first."""
        return [(key, copies[key])
                for copies, groups in zip(self.stages, self.stage_groups)
                for key in [group_key(g) for g in groups if task in g]]

    def out_channels(self, task: str) -> List[int]:
        """Channels of the feature maps that ``task`` receives."""
        return [self.num_channels[i] for i in self.out_indices[task]]

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
        start, stage_outs = 0, []
        probe = self._probe if self._probe is not None and \
            x is self._probe[0] else None
        if probe is not None and task in probe[2]:
            start, cached = probe[2][task]
            stage_outs = list(cached[:start])
            x = stage_outs[-1] if start else x
        for i, (_, stage) in enumerate(self.task_stages(task)):
            if i >= start:
                x = self.run_stage(stage, x)
                stage_outs.append(x)
        if probe is not None and probe[1] is not None:
            probe[1][task] = [y.detach() for y in stage_outs]
        return tuple(y for i, y in enumerate(stage_outs)
                     if i in self.out_indices[task])

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
                y = self.run_stage(self.stages[i][group_key(group)],
                                   feats[members[0]])
                for task in members:
                    feats[task] = y
                    if i in self.out_indices[task]:
                        outs[task].append(y)
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
        of all four stages of ``task``'s path in ``record[task]``; when
        ``resume[task] = (s, outputs)``, it takes the outputs of stages
        ``0..s-1`` from ``outputs`` and runs stages ``s..3`` only. A
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

    @staticmethod
    def run_stage(stage: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        """One stage of mmdet's ``PyramidVisionTransformer.forward``: patch
        embedding, blocks, norm, back to NCHW."""
        x, hw_shape = stage[0](x)
        for block in stage[1]:
            x = block(x, hw_shape)
        x = stage[2](x)
        return nlc_to_nchw(x, hw_shape)

    def plain_to_shared(self,
                        state_dict: Dict[str, torch.Tensor],
                        prefix: str = '') -> Dict[str, torch.Tensor]:
        """Map a plain mmdet PVT v2 state dict to this module's layout.

        ``{prefix}layers.{i}.*`` becomes ``{prefix}stages.{i}.{copy}.*`` for
        every copy of stage ``i``; other keys are kept as they are.
        """
        head = prefix + 'layers.'
        result = {}
        for key, value in state_dict.items():
            if not key.startswith(head):
                result[key] = value
                continue
            stage, rest = key[len(head):].split('.', 1)
            for copy_key in self.stages[int(stage)]:
                result[f'{prefix}stages.{stage}.{copy_key}.{rest}'] = value
        return result

    def shared_to_plain(self,
                        state_dict: Dict[str, torch.Tensor],
                        task: str,
                        prefix: str = '') -> Dict[str, torch.Tensor]:
        """Extract ``task``'s path as a plain mmdet PVT v2 state dict.

        ``{prefix}stages.{i}.{copy}.*`` of the copies on ``task``'s path
        become ``{prefix}layers.{i}.*``; other copies are dropped and other
        keys kept. The inverse of :meth:`plain_to_shared` for one task.
        """
        path = {i: key for i, (key, _) in enumerate(self.task_stages(task))}
        head = prefix + 'stages.'
        result = {}
        for key, value in state_dict.items():
            if not key.startswith(head):
                result[key] = value
                continue
            stage, copy_key, rest = key[len(head):].split('.', 2)
            if path[int(stage)] == copy_key:
                result[f'{prefix}layers.{stage}.{rest}'] = value
        return result
