"""Inter-task affinity per backbone stage, by lookahead (TAG, per stage).

Fifty et al. (2021, "Efficiently Identifying Task Groupings for Multi-Task
Learning") measure how a step along task ``i``'s gradient changes task
``j``'s loss: ``Z(i -> j) = 1 - L_j(after) / L_j(before)``, positive when
``i``'s update helps ``j``. They step a whole shared encoder; here the step
is taken on one shared stage copy at a time (plus the whole shared
backbone), each task measured on its own batch, which is what a per-stage
branching decision needs.

One measurement (:func:`measure_affinity`):

1. the model as it trains (BN normalises with the batch statistics) but
   with dropout and stochastic depth off, its buffers (BN running
   statistics) restored afterwards, the random state of torch, numpy and
   ``random`` forked and restored, and a fixed seed before every forward
   (for samplers that draw in the loss): "before" and "after" see the
   same randomness, so the ratio measures the step, not the noise;
2. per task ``j``: one forward and backward of ``L_j`` on its samples,
   giving ``L_j(before)``, the gradient of every shared stage copy on its
   path (``torch.autograd.grad``: ``.grad`` is not touched) and the outputs
   of its four stages;
3. per shared copy ``c`` of stage ``s`` and task ``i`` of ``c``: the
   weights of ``c`` moved by ``-lr * g_i`` (SGD, ``lr`` of the copy's
   parameter group unless given; ``g_i`` clipped as the optimiser wrapper
   clips the training gradient), every task ``j`` of ``c`` rerun from
   stage ``s`` on the recorded outputs of stages ``< s`` without grad, the
   weights copied back (bit-exact); ``'backbone'``: every shared copy on
   ``i``'s path moved at once;
4. per shared copy: the cosine of every pair of task gradients and each
   task's gradient norm.

The optimizer, its state, the parameters' ``.grad``, the BN statistics
and the random streams of training are left as they were. A lookahead of
``T`` tasks over ``C`` shared copies costs ``T`` forward-backwards plus
``T x (C + 1)`` lookaheads of at most ``T`` partial forwards.

Measurements are logged by :class:`~mtl_pvt.engine.TaskAffinityHook` into
``<log_dir>/affinity.json``; :func:`load_affinity` reads a work dir's and
:func:`mean_affinity` averages them over the run.
"""
import copy
import json
import math
import os
import os.path as osp
import random
import re
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from mtl_pvt.models.task_parameters import StageCopy, task_parameters
from mtl_pvt.structures import split_losses_by_task
from mtl_pvt.utils.work_dirs import sessions  # the Runner's log dirs

AFFINITY_FILE = 'affinity.json'
BACKBONE = 'backbone'  # key of the whole-backbone lookahead


class NotEnoughTasks(ValueError):
    """A batch without two tasks that share a stage: nothing to measure."""


@contextmanager
def frozen_randomness(seed_devices: Sequence[int] = ()) -> Iterator[None]:
    """Fork torch's RNG (CPU and ``seed_devices``), numpy's and
    ``random``'s; all are restored on exit."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=list(seed_devices)):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _is_random(module: nn.Module) -> bool:
    return isinstance(module, (nn.modules.dropout._DropoutNd,
                               nn.MultiheadAttention)) or \
        'droppath' in type(module).__name__.lower()


@contextmanager
def deterministic_training(model: nn.Module) -> Iterator[None]:
    """The model as it trains, minus its randomness, leaving no trace.

    Dropout, stochastic depth and attention dropout modules are put in
    eval mode (every other module keeps its mode: BN normalises with the
    batch statistics, as in training); every buffer (BN running
    statistics) is restored on exit, and each module's own mode.
    """
    flags = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    for module in model.modules():
        if _is_random(module):
            module.training = False
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training
        with torch.no_grad():
            for buffer, value in buffers:
                buffer.copy_(value)


def _task_loss(model, task, x, samples, seed, probe):
    """``task``'s summed loss on its samples, seeded, under ``probe``."""
    torch.manual_seed(seed)
    with model.backbone.probe_stages(x, **probe):
        losses = model.loss({task: x}, {task: samples})
    return split_losses_by_task(losses, [task])[task]


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def measure_affinity(model: nn.Module,
                     data_batch: dict,
                     lr_of: Callable[[nn.Parameter], float],
                     seed: int = 0,
                     max_norm: Optional[float] = None) -> dict:
    """One lookahead measurement of the per-stage inter-task affinity.

    Args:
        model (nn.Module): A ``MultiTaskModel`` (not a DDP wrapper).
        data_batch (dict): A training batch as the dataloader yields it;
            it is deep-copied before preprocessing, so the training step
            that follows sees it unchanged.
        lr_of (Callable): Learning rate of the lookahead step of a
            parameter.
        seed (int): Seed set before every forward. Defaults to 0.
        max_norm (float, optional): Clip each task's lookahead gradient
            (over all shared copies on its path) to this L2 norm, as the
            optimiser wrapper's ``clip_grad`` clips the training gradient;
            None: no clipping. The cosines and norms are those of the
            unclipped gradients. Defaults to None.

    Returns:
        dict: ``loss`` (task -> loss before), ``affinity`` (copy name or
        ``'backbone'`` -> ``{i: {j: Z(i -> j)}}``), ``grad_cos`` (copy ->
        ``{'i-j': cosine}``), ``grad_norm`` (copy -> ``{task: norm}``) and
        ``lr`` (copy -> learning rate of its first parameter). Copy names
        are those of the optimiser wrapper's statistics (``'stage2'``,
        ``'stage3.det_seg'``); copies run by one task have no entry.

    Raises:
        NotEnoughTasks: The batch holds fewer than two tasks, or no stage
            is shared by two of them.
    """
    layout = task_parameters(model)
    copies: List[StageCopy] = layout.shared_copies
    devices = [torch.cuda.current_device()] \
        if torch.cuda.is_available() else []
    with deterministic_training(model), frozen_randomness(devices):
        torch.manual_seed(seed)
        data = model.data_preprocessor(copy.deepcopy(data_batch), True)
        inputs, samples = data['inputs'], data.get('data_samples') or {}
        present = [t for t in model.task_names if t in inputs]
        copies = [
            c for c in copies if len([t for t in c.tasks if t in present]) > 1
        ]
        # a task that shares no stage with another has no affinity
        tasks = [t for t in present if any(t in c.tasks for c in copies)]
        if len(tasks) < 2 or not copies:
            raise NotEnoughTasks(
                'the affinity lookahead needs a batch of at least two tasks '
                'that share a backbone stage, but the batch holds '
                f'{present} and the shared copies are '
                f'{[(c.name, c.tasks) for c in layout.shared_copies]}')
        before, grads, steps, stage_outs = {}, {}, {}, {}
        for task in tasks:
            paths = [c for c in copies if task in c.tasks]
            params = [p for c in paths for p in c.params]
            loss = _task_loss(model, task, inputs[task], samples[task], seed,
                              dict(record=stage_outs))
            flat = torch.autograd.grad(loss, params, allow_unused=True)
            flat = [
                torch.zeros_like(p) if g is None else g
                for p, g in zip(params, flat)
            ]
            before[task] = loss.item()
            norm = _flat(flat).norm().item()
            scale = 1. if max_norm is None or norm <= max_norm else \
                max_norm / (norm + 1e-6)
            grads[task], steps[task] = {}, {}
            offset = 0
            for c in paths:
                grads[task][c.name] = flat[offset:offset + len(c.params)]
                steps[task][c.name] = [
                    g * scale for g in grads[task][c.name]
                ] if scale != 1. else grads[task][c.name]
                offset += len(c.params)

        def after(stepped: Sequence[StageCopy], source: str) -> dict:
            """Losses after stepping ``stepped`` along ``source``'s
            gradient, for every task that runs one of them."""
            saved = [[p.detach().clone() for p in c.params] for c in stepped]
            result = {}
            try:
                with torch.no_grad():
                    for c in stepped:
                        for p, g in zip(c.params, steps[source][c.name]):
                            p.sub_(g, alpha=lr_of(p))
                    for task in tasks:
                        stages = [c.stage for c in stepped if task in c.tasks]
                        if not stages:
                            continue
                        resume = {task: (min(stages), stage_outs[task])}
                        result[task] = _task_loss(model, task, inputs[task],
                                                  samples[task], seed,
                                                  dict(resume=resume)).item()
            finally:
                with torch.no_grad():
                    for c, values in zip(stepped, saved):
                        for p, value in zip(c.params, values):
                            p.copy_(value)
            return result

        def ratio(task, loss):
            return 1. - loss / before[task] if before[task] else math.nan

        affinity, grad_cos, grad_norm, lrs = {}, {}, {}, {}
        for c in copies:
            members = [t for t in c.tasks if t in tasks]
            affinity[c.name] = {
                i: {
                    j: ratio(j, v)
                    for j, v in after([c], i).items()
                }
                for i in members
            }
            # float64: a stage's gradient can hold entries of 1e6 and 1e-6
            flats = {t: _flat(grads[t][c.name]).double() for t in members}
            grad_norm[c.name] = {t: flats[t].norm().item() for t in members}
            grad_cos[c.name] = {
                f'{a}-{b}':
                nn.functional.cosine_similarity(
                    flats[a], flats[b], dim=0, eps=1e-30).item()
                for k, a in enumerate(members)
                for b in members[k + 1:]
            }
            lrs[c.name] = lr_of(c.params[0])
        affinity[BACKBONE] = {
            i: {
                j: ratio(j, v)
                for j, v in after([c for c in copies
                                   if i in c.tasks], i).items()
            }
            for i in tasks
        }
    return dict(
        loss=before,
        affinity=affinity,
        grad_cos=grad_cos,
        grad_norm=grad_norm,
        lr=lrs)


# --------------------------------------------------------------- reading --
def load_affinity(path: str) -> dict:
    """The affinity measurements of a run.

    Args:
        path (str): A work dir (every ``<timestamp>/affinity.json`` of its
            sessions: a resumed session supplies its steps, an earlier
            one the steps before the later one's first) or one
            ``affinity.json``.

    Returns:
        dict: ``tasks``, ``stage_groups`` (of the measured model),
        ``interval`` and ``records`` (one per measurement, by ``step``).

    Raises:
        FileNotFoundError: No such dir or file, or a work dir without any
            ``affinity.json`` (the run had no ``TaskAffinityHook``).
        ValueError: Sessions of one work dir measured different tasks.
    """
    if osp.isfile(path):
        files = [path]
    elif osp.isdir(path):
        files = [
            osp.join(path, s, AFFINITY_FILE) for s in sessions(path)
            if osp.isfile(osp.join(path, s, AFFINITY_FILE))
        ]
        if osp.isfile(osp.join(path, AFFINITY_FILE)):
            files.append(osp.join(path, AFFINITY_FILE))
        if not files:
            raise FileNotFoundError(
                f'no affinity data in {path!r}: looked for '
                f'{osp.join(path, "<timestamp>", AFFINITY_FILE)}, which a '
                "run with custom_hooks=[dict(type='TaskAffinityHook')] "
                'writes')
    else:
        raise FileNotFoundError(f'{path!r} does not exist')
    result = None
    for file in reversed(files):  # the latest session first
        with open(file) as f:
            data = json.load(f)
        if result is None:
            result = data
            continue
        if data['tasks'] != result['tasks']:
            raise ValueError(f'{file} measured tasks {data["tasks"]}, but '
                             f'a later session {result["tasks"]}')
        first = min((r['step'] for r in result['records']), default=math.inf)
        result['records'] = [r for r in data['records'] if r['step'] < first
                             ] + result['records']
    if not result['records']:
        raise FileNotFoundError(f'{path!r} holds no affinity measurement')
    return result


def _nested(values: Sequence, reduce: Callable[[List[float]], float]):
    """Key-wise ``reduce`` of the finite numbers of nested dicts."""
    if isinstance(values[0], dict):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {
            k: _nested([v[k] for v in values if k in v], reduce)
            for k in keys
        }
    return reduce([v for v in values if not math.isnan(v)])


def _mean(values: List[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _sem(values: List[float]) -> float:
    """Standard error of the mean; NaN with fewer than two values."""
    if len(values) < 2:
        return math.nan
    mean = _mean(values)
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return math.sqrt(var / len(values))


def mean_affinity(data: dict, begin: int = 0) -> dict:
    """``affinity``, ``grad_cos`` and ``grad_norm`` averaged over the
    records from step ``begin`` on, their standard errors
    (``affinity_sem``...), ``num_records`` and ``steps``."""
    records = [r for r in data['records'] if r['step'] >= begin]
    if not records:
        raise ValueError(f'no affinity measurement from step {begin} on '
                         f'(steps: {[r["step"] for r in data["records"]]})')
    result = dict(num_records=len(records), steps=[r['step'] for r in records])
    for key in ('affinity', 'grad_cos', 'grad_norm'):
        result[key] = _nested([r[key] for r in records], _mean)
        result[f'{key}_sem'] = _nested([r[key] for r in records], _sem)
    return result


def significant(mean: Dict[str, Dict[str, float]], sem: Dict[str, Dict[str,
                                                                       float]],
                z: float) -> Dict[str, Dict[str, float]]:
    """``mean`` with the entries within ``z`` standard errors of 0 set to
    0 (kept as they are where the error is unknown, or with ``z=0``)."""
    return {
        i: {
            j:
            0. if z > 0 and not math.isnan(sem[i][j])
            and abs(value) < z * sem[i][j] else value
            for j, value in row.items()
        }
        for i, row in mean.items()
    }


def stage_affinity(mean: dict,
                   stage: int,
                   key: str = 'affinity') -> Dict[str, Dict[str, float]]:
    """``{i: {j: Z}}`` of every copy of ``stage`` merged (copies of one
    stage hold disjoint tasks); ``key='affinity_sem'`` for the errors."""
    merged: Dict[str, Dict[str, float]] = {}
    for name, matrix in mean[key].items():
        if name != BACKBONE and copy_stage(name) == stage:
            for i, row in matrix.items():
                merged.setdefault(i, {}).update(row)
    return merged


def copy_stage(name: str) -> int:
    """Stage index of a copy name (``'stage2'``, ``'stage3.det_seg'``)."""
    match = re.match(r'^stage(\d+)(\.|$)', name)
    if not match:
        raise ValueError(f'{name!r} is not a stage copy name')
    return int(match.group(1))


def write_json_atomic(data: dict, path: str) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
