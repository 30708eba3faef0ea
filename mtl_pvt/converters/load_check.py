"""Pre-flight check of ``load_from`` and ``--resume``: load right or not at
all.

Run by ``tools/train.py`` before the Runner is built::

    checkpoint keys vs the model's (built from cfg.model, no weights)
      fit                      -> train (one line in the log)
      only leftover keys       -> train, the leftovers named
      backbone does not fit:
        resume                 -> error (optimizer states would not fit)
        official / STL / other
        sharing layout          -> stl_to_mtl into <work_dir>/converted_*.pth,
                                   load_from points at it (said in the log)
        cannot be mapped       -> error naming the converter command
      heads do not fit         -> train, the heads named (fine-tuning with
                                  another number of classes)

``load_from_partial=True`` in the config lets a checkpoint whose backbone
does not fit load as mmengine would (what fits, the rest initialised).
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import find_latest_checkpoint

from mtl_pvt.engine import allow_mmengine_checkpoint_globals
from mtl_pvt.engine.checkpoint_fit import MTL  # noqa: F401 (re-exported)
from mtl_pvt.engine.checkpoint_fit import (OFFICIAL, PARTIAL_KEY, STL,
                                           CheckpointMismatchError, StateFit,
                                           checkpoint_layout, fit_state,
                                           mismatch_hint, split_groups,
                                           state_dict_of)
from mtl_pvt.utils.builder import build_model_from_config
from .stl2mtl import stl_to_mtl

StateDict = Dict[str, torch.Tensor]
Note = Tuple[int, str]  # (logging level, message)


def load_state(path: str) -> Tuple[StateDict, dict]:
    """The tensors and meta of a local checkpoint, read weights-only.

    Raises:
        CheckpointMismatchError: If the file cannot be read (truncated,
            not a checkpoint).
    """
    allow_mmengine_checkpoint_globals()
    try:
        try:  # memory-mapped: the tensors are not read now
            checkpoint = torch.load(
                path, map_location='cpu', weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) format cannot be mapped
            checkpoint = torch.load(
                path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise CheckpointMismatchError(
            f'cannot read the checkpoint {path}: {error}') from error
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(
            f'{path} is not a checkpoint (a {type(checkpoint).__name__})')
    return state_dict_of(checkpoint), dict(checkpoint.get('meta') or {})


def checkpoint_to_check(cfg: Config) -> Tuple[Optional[str], bool]:
    """``(local path, resuming)`` of the checkpoint the Runner will load.

    ``resume=True`` without ``load_from`` is the latest checkpoint of the
    work dir (``last_checkpoint``), None if there is none.
    """
    resume = bool(cfg.get('resume'))
    path = cfg.get('load_from')
    if resume and path is None and osp.isdir(cfg.work_dir):
        path = find_latest_checkpoint(cfg.work_dir)
        if path is not None and not osp.isfile(path):
            raise CheckpointMismatchError(
                f'cannot resume: {osp.join(cfg.work_dir, "last_checkpoint")}'
                f' names {path}, which does not exist')
    if not isinstance(path, str) or '://' in path or not osp.isfile(path):
        return None, resume  # remote or absent: the Runner reports it
    return path, resume


def _task_states_of_mtl(state: StateDict, tasks: Sequence[str],
                        backbone) -> Dict[str, StateDict]:
    """Per task of an MTL checkpoint (any sharing), its branch in the STL
    layout: the plain backbone keys (``backbone.layers.{i}.*`` for PVT v2)
    of the stage copies on its path and its task model's own keys.

    ``backbone`` (the config's ``SharedBackbone``) reads the layout; the
    checkpoint may have another sharing tree."""
    own = list(
        dict.fromkeys(
            k.split('.')[1] for k in state if k.startswith('tasks.')))
    names = own + [t for t in tasks if t not in own]
    out: Dict[str, StateDict] = {}
    for key, value in state.items():
        parts = key.split('.', 2)
        if key.startswith('tasks.'):
            out.setdefault(parts[1], {})['.'.join(parts[2:])] = value
            continue
        parsed = backbone.parse_copy_key(key[len('backbone.'):]) \
            if key.startswith('backbone.') else None
        if parsed is None:
            continue
        stage, copy_key, rest = parsed
        plain = backbone.branch_to_plain(stage, rest)
        for task in split_groups(copy_key, names) or []:
            if plain is not None:
                out.setdefault(task, {})[f'backbone.{plain}'] = value
    return out


def _task_of_stl(state: StateDict, target: Mapping[str, torch.Tensor],
                 tasks: Sequence[str]) -> Tuple[Optional[str], str]:
    """The task of the MTL model whose model an STL checkpoint is, by its
    head and neck keys and shapes; ``(task or None, why)``."""
    rest = {k: v for k, v in state.items() if not k.startswith('backbone.')}
    score = {
        t:
        sum(
            tuple(target[f'tasks.{t}.{k}'].shape) == tuple(v.shape)
            for k, v in rest.items() if f'tasks.{t}.{k}' in target)
        for t in tasks
    }
    best = max(score.values(), default=0)
    winners = [t for t, s in score.items() if s == best]
    if not rest or best == 0:
        return tasks[0], (f'its keys name no task model: its backbone '
                          f'seeds the stage copies (task {tasks[0]!r})')
    if len(winners) > 1:
        return None, (f'its {len(rest)} non-backbone tensors fit tasks '
                      f'{winners} equally')
    return winners[0], (f'{best} of its {len(rest)} non-backbone tensors '
                        f'fit task {winners[0]!r}')


def convert_for_config(cfg: Config, model: torch.nn.Module, state: StateDict,
                       layout: str) -> Tuple[dict, str]:
    """Map a checkpoint of another layout onto the MTL model of ``cfg``.

    Args:
        cfg (Config): The multi-task config.
        model (MultiTaskModel): Its model (for the task names and keys).
        state (dict): The checkpoint's tensors.
        layout (str): Its :func:`checkpoint_layout`.

    Returns:
        tuple[dict, str]: The converted checkpoint (as ``stl_to_mtl``
        makes it) and how it was mapped.

    Raises:
        ValueError: If it cannot be mapped (the converter's message: every
            tensor that does not fit).
    """
    tasks = list(model.task_names)
    if layout == OFFICIAL:
        return stl_to_mtl(cfg, pvt_official=state), \
            'the official PVT v2 backbone seeds every stage copy'
    if layout == STL:
        task, why = _task_of_stl(state, model.state_dict(), tasks)
        if task is None:
            raise ValueError(f'cannot tell the task of this single-task '
                             f'checkpoint: {why}')
        return stl_to_mtl(cfg, {task: state}), \
            f'read as the {task!r} STL checkpoint ({why})'
    branches = _task_states_of_mtl(state, tasks, model.backbone)
    given = {t: branches[t] for t in tasks if t in branches}
    if not any(
            any(k.startswith('backbone.') for k in s) for s in given.values()):
        raise ValueError('no task of the config has a backbone path in the '
                         f'checkpoint (its tasks: {sorted(branches)})')
    return stl_to_mtl(cfg, given), \
        (f'each task path of the checkpoint seeds its tasks\' stage copies '
         f'(tasks {sorted(given)})')


def _save_converted(checkpoint: dict, work_dir: str, path: str) -> str:
    """Write the converted checkpoint into the work dir, atomically (every
    rank of a distributed run writes the same bytes)."""
    os.makedirs(work_dir, exist_ok=True)
    out = osp.join(work_dir, 'converted_' + osp.basename(path))
    tmp = f'{out}.{os.getpid()}.tmp'
    torch.save(checkpoint, tmp)
    os.replace(tmp, out)
    return out


def _is_multi_task(cfg: Config) -> bool:
    return str((cfg.get('model') or {}).get('type', '')).split('.')[-1] \
        == 'MultiTaskModel'


def check_load_from(cfg: Config) -> List[Note]:
    """Check (and if need be convert) the checkpoint the run will load.

    Args:
        cfg (Config): The training config (``load_from``, ``resume``,
            ``work_dir``, ``load_from_partial``); ``load_from`` is pointed
            at the converted checkpoint when one is made.

    Returns:
        list[tuple[int, str]]: ``(logging level, message)`` for the run's
        log, which exists only once the Runner is built.

    Raises:
        CheckpointMismatchError: When the checkpoint cannot be read, a
            resumed checkpoint does not fit, or a backbone would train from
            its initialisation; the message says what does not fit and how
            to convert it (or ``load_from_partial=True``).
    """
    path, resume = checkpoint_to_check(cfg)
    if path is None:
        return []
    state, _ = load_state(path)
    model = build_model_from_config(cfg)
    fit = fit_state(state, model.state_dict())
    # What fits, or differs only in heads, is reported when it is loaded
    # (MultiTaskCheckpointHook), in the run's log.
    if fit.model_complete:
        return []
    name = f'{"resume" if resume else "load_from"} {path}'
    if resume:
        raise CheckpointMismatchError(
            fit.describe(name) + '\na run resumes from a checkpoint of '
            'this very model (its optimizer states are per tensor): use '
            'load_from, or resume from a checkpoint of this config')
    if not fit.backbone_problems or cfg.get(PARTIAL_KEY):
        return []
    return _convert_or_raise(cfg, model, path, state, fit, name)


def _convert_or_raise(cfg: Config, model: torch.nn.Module, path: str,
                      state: StateDict, fit: StateFit,
                      name: str) -> List[Note]:
    """A checkpoint whose backbone does not fit: convert it if it is a
    layout that ``stl_to_mtl`` maps, else stop."""
    layout = checkpoint_layout(state)
    reason = fit.describe(name)
    convertible = _is_multi_task(cfg) and layout in (OFFICIAL, STL, MTL)
    if convertible:
        try:
            checkpoint, how = convert_for_config(cfg, model, state, layout)
        except ValueError as error:
            reason += f'\nit is a {layout} checkpoint, but stl2mtl cannot ' \
                f'map it onto this config: {error}'
        else:
            meta = checkpoint['meta']
            # converted from memory: name the file
            meta['sources'] = {task: path for task in meta['sources']}
            if meta.get('pvt_official'):
                meta['pvt_official'] = path
            out = _save_converted(checkpoint, cfg.work_dir, path)
            cfg.load_from = out
            return [(logging.WARNING, reason),
                    (logging.WARNING,
                     f'converted {path} ({layout} layout) with stl2mtl into '
                     f'{out}, which is loaded instead: {how}; '
                     f'{len(meta["missing_keys"])} model tensors that it '
                     'lacks keep their initialisation')]
    raise CheckpointMismatchError(
        reason +
        mismatch_hint(cfg.filename, path, layout, _is_multi_task(cfg)))
