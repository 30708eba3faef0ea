"""How well a checkpoint's tensors fit a model, told in a few lines.

MMEngine loads ``load_from`` non-strictly: keys that are missing, left
over or of another shape are skipped, and the report of it goes to the
console only. An STL checkpoint loaded into a multi-task model fits none
of its ``backbone.stages.*`` keys, and the run trains from random weights
with exit code 0. :func:`fit_state` compares the two state dicts and
:meth:`StateFit.describe` says what does not fit, grouped by the model's
parts (a stage copy, a task's head), e.g.::

    missing 250 of 250 model tensors: backbone.stages.0.cls_det_seg (17),
      ..., tasks.det.bbox_head (14)
    unexpected 205 checkpoint tensors: backbone.layers.0 (17), ...

:func:`checkpoint_layout` tells the layouts apart that
``tools/model_converters/stl2mtl.py`` can map onto a multi-task model.
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

BACKBONE = 'backbone.'
# The config switch that lets a checkpoint load only what fits.
PARTIAL_KEY = 'load_from_partial'
STL2MTL = 'tools/model_converters/stl2mtl.py'
MTL2STL = 'tools/model_converters/mtl2stl.py'
# Layouts of checkpoint_layout()
OFFICIAL = 'official PVT v2'
STL = 'single-task'
MTL = 'multi-task'
UNKNOWN = 'unknown'


def _ignored(key: str) -> bool:
    # BN counters: mmengine does not report them either
    return key.endswith('num_batches_tracked')


def group_of(key: str) -> str:
    """The part of a model that ``key`` belongs to, for the report.

    ``backbone.stages.{i}.{copy}`` (a stage copy of ``SharedPVTv2``),
    ``backbone.layers.{i}`` (a stage of mmdet's PVT v2),
    ``tasks.{task}.{module}`` (a task model's head or neck), else the
    first component (``neck``, ``bbox_head``, ``patch_embed1``).
    """
    parts = key.split('.')
    if parts[:2] == ['backbone', 'stages']:
        depth = 4
    elif parts[:2] == ['backbone', 'layers'] or parts[0] == 'tasks':
        depth = 3
    else:
        depth = 1
    return '.'.join(parts[:min(depth, len(parts) - 1) or 1])


def summarize_keys(keys: Sequence[str], limit: int = 8) -> str:
    """``'backbone.stages.0.cls (17), tasks.det.bbox_head (8), ...'``."""
    groups: Dict[str, int] = OrderedDict()
    for key in keys:
        groups[group_of(key)] = groups.get(group_of(key), 0) + 1
    names = [f'{name} ({num})' for name, num in groups.items()]
    more = len(names) - limit
    text = ', '.join(names[:limit])
    return text + (f', and {more} more' if more > 0 else '')


@dataclass
class StateFit:
    """The keys of a checkpoint against those of a model.

    Attributes:
        num_model (int): Tensors of the model.
        num_loaded (int): Model tensors the checkpoint has, same shape.
        missing (list[str]): Model keys that the checkpoint lacks.
        unexpected (list[str]): Checkpoint keys that the model lacks.
        mismatched (list[tuple]): ``(key, checkpoint shape, model shape)``.
    """
    num_model: int
    num_loaded: int
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Every tensor of each side has its counterpart."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def backbone_problems(self) -> List[str]:
        """Backbone keys of the model that would keep their init."""
        return [k for k in self.missing if k.startswith(BACKBONE)] + [
            k for k, _, _ in self.mismatched if k.startswith(BACKBONE)
        ]

    @property
    def model_complete(self) -> bool:
        """Every model tensor is loaded (leftover keys aside)."""
        return not (self.missing or self.mismatched)

    def describe(self, name: str = 'the checkpoint') -> str:
        """A few lines: what is loaded, missing, unexpected, mismatched."""
        lines = [
            f'{name}: {self.num_loaded} of {self.num_model} model tensors '
            'fit'
        ]
        if self.missing:
            lines.append(f'  missing {len(self.missing)} model tensors: ' +
                         summarize_keys(self.missing))
        if self.mismatched:
            shown = [
                f'{k} {tuple(c)} vs model {tuple(m)}'
                for k, c, m in self.mismatched[:4]
            ]
            more = len(self.mismatched) - len(shown)
            lines.append(f'  {len(self.mismatched)} tensors of another shape '
                         f'(checkpoint vs model): ' + ', '.join(shown) +
                         (f', and {more} more' if more > 0 else ''))
        if self.unexpected:
            lines.append(
                f'  unexpected {len(self.unexpected)} checkpoint tensors: ' +
                summarize_keys(self.unexpected))
        return '\n'.join(lines)


def fit_state(state: Mapping[str, torch.Tensor],
              target: Mapping[str, torch.Tensor]) -> StateFit:
    """Compare a checkpoint's state dict with a model's.

    Args:
        state (dict): The checkpoint's tensors (a DDP ``module.`` prefix
            is stripped, as mmengine does).
        target (dict): The model's ``state_dict()``.

    Returns:
        StateFit: The comparison; BN ``num_batches_tracked`` counters are
        left out, as mmengine leaves them out of its report.
    """
    state = {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state.items() if not _ignored(k)
    }
    target = {k: v for k, v in target.items() if not _ignored(k)}
    fit = StateFit(num_model=len(target), num_loaded=0)
    for key, value in target.items():
        if key not in state:
            fit.missing.append(key)
        elif tuple(state[key].shape) != tuple(value.shape):
            fit.mismatched.append(
                (key, tuple(state[key].shape), tuple(value.shape)))
        else:
            fit.num_loaded += 1
    fit.unexpected = [k for k in state if k not in target]
    return fit


def state_dict_of(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """The tensors of a Runner checkpoint, a ``{'model': ...}`` one or a
    bare state dict."""
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    return {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def _is_copy_key(key: str) -> bool:
    """``backbone.stages.{i}.{copy}.*`` of a shared backbone (not mmdet's
    Swin, whose own ``stages.{i}`` hold ``blocks`` and ``downsample``)."""
    parts = key.split('.', 4)
    return len(parts) == 5 and parts[:2] == ['backbone', 'stages'] and \
        parts[2].isdigit() and parts[3] not in ('blocks', 'downsample')


def checkpoint_layout(state: Mapping[str, torch.Tensor]) -> str:
    """Which layout a state dict has.

    Returns:
        str: :data:`MTL` (a shared backbone's ``backbone.stages.{i}.{copy}.*``,
        ``tasks.*``), :data:`STL` (a library backbone under ``backbone.``,
        as mmpretrain, mmdet and mmseg save it: ``backbone.layers.*`` for
        PVT v2), :data:`OFFICIAL` (PVT v2's whai362 ``patch_embed1.*``,
        ``block1.*``) or :data:`UNKNOWN`.
    """
    keys = [
        k[len('module.'):] if k.startswith('module.') else k for k in state
    ]
    if any(k.startswith('tasks.') or _is_copy_key(k) for k in keys):
        return MTL
    if any(k.startswith('backbone.') for k in keys):
        return STL
    if any(k.startswith('patch_embed1.') for k in keys) and \
            any(k.startswith('block1.') for k in keys):
        return OFFICIAL
    return UNKNOWN


def nonfinite_keys(state: Mapping[str, torch.Tensor]) -> List[str]:
    """Keys of the floating-point tensors that hold a NaN or an inf."""
    return [
        key for key, value in state.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


def split_groups(copy_key: str, tasks: Sequence[str]) -> Optional[List[str]]:
    """The tasks whose names, joined by ``'_'``, make ``copy_key``.

    Task names may hold ``'_'`` themselves, so the split is searched, in
    the order of ``tasks`` (as a shared backbone names its copies).

    Returns:
        list[str] | None: The tasks, or None if no split fits.
    """
    if not copy_key:
        return []
    for i, task in enumerate(tasks):
        if copy_key == task:
            return [task]
        if copy_key.startswith(task + '_'):
            rest = split_groups(copy_key[len(task) + 1:], tasks[i + 1:])
            if rest is not None:
                return [task] + rest
    return None


class CheckpointMismatchError(RuntimeError):
    """A checkpoint whose tensors do not fit the model of the config."""


def mismatch_hint(config: Optional[str], path: str, layout: str,
                  multi_task: bool) -> str:
    """How to make a checkpoint of ``layout`` fit, for an error message."""
    config = config or 'CONFIG'
    hint = ''
    if multi_task and layout == OFFICIAL:
        hint = f'python {STL2MTL} {config} mtl_init.pth --pvt-official {path}'
    elif multi_task and layout == STL:
        hint = (f'python {STL2MTL} {config} mtl_init.pth --task '
                f'TASK={path} (TASK: the task of the config it is for)')
    elif multi_task and layout == MTL:
        hint = (f'python {MTL2STL} ITS_CONFIG {path} OUT_DIR, then python '
                f'{STL2MTL} {config} mtl_init.pth --task '
                'TASK=OUT_DIR/..._TASK.pth, once per task')
    elif layout == MTL:
        hint = f'python {MTL2STL} ITS_CONFIG {path} OUT_DIR (one task each)'
    partial = f'{PARTIAL_KEY}=True to load only what fits (the rest, ' \
        'backbone included, keeps its initialisation)'
    if not hint:
        return f'\nor set {partial}'
    return f'\nconvert it with: {hint}\nand load the result, or set ' \
        f'{partial}'
