"""Assemble a multi-task checkpoint from single-task and official weights.

Sources, each optional:

- STL checkpoints of mmpretrain, mmdet and mmseg models on the plain
  library backbone that the target's shared backbone reuses (mmdet's
  ``PyramidVisionTransformerV2``: ``backbone.layers.{i}.*``; ``ResNet``,
  ``SwinTransformer``) plus the task model's own keys, as Runner
  checkpoints (``state_dict`` and ``meta``) or bare state dicts;
- the backbone's official ImageNet checkpoint, as the shared backbone's
  ``official_to_plain`` converts it (PVT v2: whai362's layout, mmdet's
  ``pvt_convert``; ResNet: torchvision's; Swin: microsoft's, mmdet's
  ``swin_converter``); its classification head becomes the ``head.fc.*`` of
  mmpretrain's ``LinearClsHead``.

Each copy of each stage of the target's ``SharedBackbone`` gets the stage
of one source (or their average), and each task model the non-backbone
keys of its own checkpoint. The target model is built from the MTL config
(``init_cfg=None``) to check every tensor's shape::

    sources -> plain backbones and task states
            -> backbone.stages.{i}.{copy}.* (the backbone's stage_state)
               and tasks.{task}.*
            -> shape check against MultiTaskModel.state_dict()
"""
import logging
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader

from mtl_pvt.engine import allow_mmengine_checkpoint_globals
from mtl_pvt.models.backbones import SharedBackbone, SharedPVTv2
from mtl_pvt.structures import to_plain_meta
from mtl_pvt.utils.builder import build_model_from_config

StateDict = Dict[str, torch.Tensor]
Source = Union[str, Mapping]

OFFICIAL = 'official'
AVERAGE = 'average'
BACKBONE = 'backbone.'


def load_checkpoint_file(source: Source) -> Tuple[StateDict, dict]:
    """The state dict and meta of a checkpoint.

    Args:
        source (str | dict): A checkpoint path or URL, or a loaded
            checkpoint: a Runner checkpoint (``state_dict`` and ``meta``),
            a ``{'model': ...}`` checkpoint or a bare state dict.

    Returns:
        tuple[dict, dict]: Tensors by key (a DDP ``module.`` prefix
        removed) and the meta (empty for a bare state dict).
    """
    if isinstance(source, str):
        # Runner checkpoints hold HistoryBuffers (weights-only torch.load)
        allow_mmengine_checkpoint_globals()
        source = CheckpointLoader.load_checkpoint(source, map_location='cpu')
    if not isinstance(source, Mapping):
        raise TypeError(f'a checkpoint must be a dict, not {type(source)}')
    meta = source.get('meta') or {}
    for key in ('state_dict', 'model'):
        if isinstance(source.get(key), Mapping):
            source = source[key]
            break
    state = OrderedDict()
    for key, value in source.items():
        if isinstance(value, torch.Tensor):
            key = key[len('module.'):] if key.startswith('module.') else key
            state[key] = value
    return state, dict(meta)


def official_to_plain(
        state: StateDict,
        backbone: type = SharedPVTv2) -> Tuple[StateDict, StateDict]:
    """Split an official checkpoint into backbone and head.

    Args:
        state (dict): The official keys (PVT v2: ``patch_embed1.proj.weight``
            ...).
        backbone (type): The ``SharedBackbone`` class whose official
            release it is. Defaults to ``SharedPVTv2``.

    Returns:
        tuple[dict, dict]: The library backbone's keys (mmdet's
        ``layers.{i}.*`` for PVT v2) and the head as mmpretrain's
        ``LinearClsHead`` names it (``head.fc.*``).
    """
    return backbone.official_to_plain(state)


def split_task_state(state: StateDict) -> Tuple[StateDict, StateDict]:
    """Split an STL state dict into its backbone (the ``backbone.`` prefix
    removed) and the other keys."""
    backbone = {
        k[len(BACKBONE):]: v
        for k, v in state.items() if k.startswith(BACKBONE)
    }
    rest = {k: v for k, v in state.items() if not k.startswith(BACKBONE)}
    return backbone, rest


def average_states(states: Sequence[StateDict],
                   names: Sequence[str]) -> StateDict:
    """Element-wise mean of state dicts with the same keys and shapes.

    Integer tensors (counters) are taken from the first state dict.

    Raises:
        ValueError: Listing the keys that are missing from a state dict or
            whose shapes differ.
    """
    problems = []
    for key in dict.fromkeys(k for s in states for k in s):
        shapes = [tuple(s[key].shape) if key in s else None for s in states]
        if len(set(shapes)) > 1:
            found = [
                f'{n} {shape or "missing"}' for n, shape in zip(names, shapes)
            ]
            problems.append(f'{key}: ' + ', '.join(found))
    if problems:
        raise ValueError('cannot average the backbones of ' +
                         ', '.join(names) + ':\n  ' + '\n  '.join(problems))
    mean = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            value = torch.stack([s[key] for s in states]).mean(0)
        mean[key] = value
    return mean


class _Sources:
    """The loaded sources: plain backbones and task states by name."""

    def __init__(self,
                 tasks: Sequence[str],
                 checkpoints: Mapping[str, Source],
                 pvt_official: Optional[Source],
                 backbone_class: type = SharedPVTv2):
        unknown = sorted(set(checkpoints) - set(tasks))
        if unknown:
            raise ValueError(f'checkpoints given for task(s) {unknown} that '
                             f'the MTL config does not have (tasks: '
                             f'{list(tasks)})')
        self.backbones: Dict[str, StateDict] = {}
        self.task_states: Dict[str, StateDict] = {}
        self.metas: Dict[str, dict] = {}
        for task in tasks:
            if task in checkpoints:
                state, self.metas[task] = load_checkpoint_file(
                    checkpoints[task])
                backbone, self.task_states[task] = split_task_state(state)
                if backbone:
                    self.backbones[task] = backbone
        self.official_head: StateDict = {}
        if pvt_official is not None:
            state, _ = load_checkpoint_file(pvt_official)
            self.backbones[OFFICIAL], self.official_head = \
                official_to_plain(state, backbone_class)
        if not self.backbones:
            raise ValueError(
                'no source has backbone weights: give an STL checkpoint '
                'with backbone.* keys or the official checkpoint of the '
                f'backbone ({backbone_class.__name__})')

    def copy_sources(self, group: Sequence[str],
                     backbone_from: Optional[str]) -> List[str]:
        """The source(s) of the stage copy that ``group`` shares.

        A copy of one task takes that task's backbone; a shared copy the
        one ``backbone_from`` names (default: the first task of the group
        with a backbone). Either falls back on the official checkpoint,
        then on the first task with a backbone.
        """
        own = [t for t in group if t in self.backbones]
        if len(group) == 1 or backbone_from is None:
            chosen = own[:1]
        elif backbone_from == AVERAGE:
            chosen = own
        else:
            chosen = [backbone_from]
        if chosen:
            return chosen
        if OFFICIAL in self.backbones:
            return [OFFICIAL]
        return list(self.backbones)[:1]


def check_backbone_from(backbone_from: Optional[str], tasks: Sequence[str],
                        sources: _Sources) -> None:
    """Raise if ``backbone_from`` names no backbone source."""
    if backbone_from in (None, AVERAGE):
        return
    if backbone_from != OFFICIAL and backbone_from not in tasks:
        raise ValueError(f'backbone_from must be a task {list(tasks)}, '
                         f"'{OFFICIAL}' or '{AVERAGE}', but got "
                         f'{backbone_from!r}')
    if backbone_from not in sources.backbones:
        what = 'the official checkpoint was not given' \
            if backbone_from == OFFICIAL else \
            'no checkpoint with backbone.* keys was given for it'
        raise ValueError(f'backbone_from={backbone_from!r}, but {what}')


def assemble_backbone(
    backbone: SharedBackbone, sources: _Sources, backbone_from: Optional[str]
) -> Tuple[StateDict, Dict[str, str], Dict[str, str]]:
    """Seed every stage copy of a ``SharedBackbone``.

    Returns:
        tuple: The state (``backbone.stages.{i}.{copy}.*``), the source of
        each key, and the source of each copy (``'stages.{i}.{copy}'``).
    """
    state, origin, copies = OrderedDict(), {}, {}
    for i, group, key, _ in backbone.stage_copies():
        names = sources.copy_sources(group, backbone_from)
        tensors = average_states([
            backbone.stage_state(sources.backbones[n], i, key) for n in names
        ], names)
        name = names[0] if len(names) == 1 else \
            f"{AVERAGE}({', '.join(names)})"
        prefix = f'{BACKBONE}{backbone.copy_name(i, key)}.'
        for rest, value in tensors.items():
            state[prefix + rest] = value
            origin[prefix + rest] = name
        # a part that the chosen source's backbone lacks (a Swin stage's
        # norm, which only the tasks that read the stage have) from the
        # group's other tasks
        for other in [t for t in group if t in sources.backbones]:
            more = backbone.stage_state(sources.backbones[other], i, key)
            for rest, value in more.items():
                if prefix + rest not in state:
                    state[prefix + rest] = value
                    origin[prefix + rest] = other
        copies[prefix[len(BACKBONE):-1]] = name
        if not set(names) & {*group, OFFICIAL, backbone_from}:
            print_log(
                f'{prefix[:-1]} takes the backbone of {name}: none of '
                f'{list(group)} has one, nor the official checkpoint',
                logger='current',
                level=logging.WARNING)
    return state, origin, copies


def assemble_tasks(tasks: Sequence[str], sources: _Sources,
                   target: Mapping[str, torch.Tensor],
                   official_head: bool) -> Tuple[StateDict, Dict[str, str]]:
    """The task models' own keys (``tasks.{task}.*``) and their source.

    A task without a checkpoint whose model has a ``head.fc`` takes the
    official classification head, if given and ``official_head``.
    """
    state, origin = OrderedDict(), {}
    for task in tasks:
        if task in sources.task_states:
            own, name = sources.task_states[task], task
        elif official_head and sources.official_head and \
                f'tasks.{task}.head.fc.weight' in target:
            own, name = sources.official_head, OFFICIAL
        else:
            continue
        for key, value in own.items():
            state[f'tasks.{task}.{key}'] = value
            origin[f'tasks.{task}.{key}'] = name
    return state, origin


def check_fit(state: StateDict, target: Mapping[str, torch.Tensor],
              origin: Mapping[str, str],
              config_name: str) -> Tuple[List[str], List[str]]:
    """Compare the assembled state with the target model's.

    Returns:
        tuple[list, list]: The missing and the unexpected keys.

    Raises:
        ValueError: If a tensor has another shape than the model's, or a
            backbone tensor of the model has no source; the message lists
            every such tensor with both shapes.
    """
    bad = [
        key for key, value in state.items()
        if key in target and value.shape != target[key].shape
    ]
    mismatched = [
        f'{key}: checkpoint {tuple(state[key].shape)} vs model '
        f'{tuple(target[key].shape)} (from {origin[key]})' for key in bad
    ]
    missing = [key for key in target if key not in state]
    unexpected = [key for key in state if key not in target]
    no_backbone = [
        f'{key}: model {tuple(target[key].shape)}, no source has it'
        for key in missing if key.startswith(BACKBONE)
    ]
    if mismatched or no_backbone:
        lines = [f'the checkpoints do not fit the model of {config_name}:']
        if mismatched:
            lines.append(f'{len(mismatched)} tensor(s) of another shape:')
            lines += ['  ' + line for line in mismatched]
        if no_backbone:
            lines.append(f'{len(no_backbone)} backbone tensor(s) missing:')
            lines += ['  ' + line for line in no_backbone]
        if any(origin[k] == OFFICIAL and k.startswith('tasks.') for k in bad):
            lines.append('(official_head=False, or --no-official-head, '
                         'leaves the classifier head as initialised)')
        raise ValueError('\n'.join(lines))
    return missing, unexpected


def _source_name(source: Optional[Source]) -> Optional[str]:
    if source is None or isinstance(source, str):
        return source
    return '<in-memory checkpoint>'


def stl_to_mtl(config: Union[str, Config],
               checkpoints: Optional[Mapping[str, Source]] = None,
               pvt_official: Optional[Source] = None,
               backbone_from: Optional[str] = None,
               official_head: bool = True) -> dict:
    """Build a checkpoint of an MTL config from STL and official weights.

    Args:
        config (str | Config): The MTL config (file).
        checkpoints (dict[str, str | dict], optional): Task name -> its STL
            checkpoint (path, Runner checkpoint or bare state dict) in the
            native layout of mmpretrain, mmdet or mmseg. Defaults to None.
        pvt_official (str | dict, optional): The official ImageNet
            checkpoint of the config's backbone (named for PVT v2, the
            first; a ResNet's torchvision checkpoint, a Swin's microsoft
            one are read too: ``official_to_plain`` of the backbone class).
            Defaults to None.
        backbone_from (str, optional): Source of the stage copies that
            several tasks share: a task name, ``'official'`` or
            ``'average'`` (the mean of the sharing tasks' backbones).
            Defaults to None: the first sharing task with a backbone.
            Per-task copies come from their task's checkpoint. A copy
            without its source falls back on the official checkpoint,
            then on the first task with a backbone (with a warning).
        official_head (bool): Whether a classifier without a checkpoint
            takes the official ``head.*``. Defaults to True.

    Returns:
        dict: ``{'state_dict': ..., 'meta': ...}`` for ``load_from``; the
        meta names the sources, the source of each stage copy and the
        missing and unexpected keys.

    Raises:
        ValueError: If a tensor does not fit the model or the backbone
            lacks a source (the message lists every such tensor).
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    model = build_model_from_config(cfg)
    tasks = list(model.task_names)
    checkpoints = dict(checkpoints or {})
    sources = _Sources(tasks, checkpoints, pvt_official, type(model.backbone))
    check_backbone_from(backbone_from, tasks, sources)
    target = model.state_dict()

    state, origin, copies = assemble_backbone(model.backbone, sources,
                                              backbone_from)
    task_state, task_origin = assemble_tasks(tasks, sources, target,
                                             official_head)
    state.update(task_state)
    origin.update(task_origin)
    config_name = cfg.filename or 'the config'
    missing, unexpected = check_fit(state, target, origin, config_name)
    report_keys(copies, missing, unexpected)

    meta = dict(
        converter='mtl_pvt.converters.stl_to_mtl',
        config=cfg.filename,
        sources={
            t: _source_name(c)
            for t, c in checkpoints.items()
        },
        pvt_official=_source_name(pvt_official),
        backbone_from=backbone_from,
        backbone_sources=copies,
        missing_keys=missing,
        unexpected_keys=unexpected)
    dataset_meta = {
        task: to_plain_meta(m['dataset_meta'])
        for task, m in sources.metas.items() if m.get('dataset_meta')
    }
    if dataset_meta:
        meta['dataset_meta'] = dataset_meta
    kept = OrderedDict((k, v) for k, v in state.items() if k in target)
    return dict(state_dict=kept, meta=meta)


def report_keys(copies: Mapping[str, str], missing: Sequence[str],
                unexpected: Sequence[str]) -> None:
    """Log the source of each stage copy and the missing and unexpected
    keys."""
    print_log(
        'stage copies and their sources:\n' +
        '\n'.join(f'  backbone.{c}: {s}' for c, s in copies.items()),
        logger='current')
    print_log(
        f'missing keys ({len(missing)}, left as initialised):' +
        ''.join(f'\n  {k}' for k in missing),
        logger='current')
    print_log(
        f'unexpected keys ({len(unexpected)}, dropped):' +
        ''.join(f'\n  {k}' for k in unexpected),
        logger='current')
