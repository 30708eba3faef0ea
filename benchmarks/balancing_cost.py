"""Cost of the task-balancing methods on the demo full-share model.

Three figures, each measured in one run so that the machine's noise hits
every arm alike:

1. **Step time** of every loss weighting and gradient aggregator of
   ``MultiTaskOptimWrapper`` relative to equal weights (mmengine's
   ``OptimWrapper``), on the same model and batches; the repetitions cycle
   through the methods, and each figure is the ratio of medians. Goals:
   aggregators <= 1.15, loss weightings <= 1.03. Beside it, the
   **optimiser wrapper's own time**: the step minus the preprocessing, the
   forward (``MultiTaskModel.loss``) and every ``Tensor.backward``, timed
   inside the same steps: what the method adds (weights, aggregation,
   clipping, statistics, the optimizer's step) apart from the forward and
   backward that every arm shares, whose noise a whole-step ratio cannot
   tell from a 3 % difference. Its excess over equal weights' own time is
   given as a share of equal weights' whole step.
2. **Peak memory** of one step (a fresh process per arm; the step's rise of
   the resident set above what the process held before it): the joint step,
   the one-task-at-a-time step (``task_by_task=True``) and each task alone.
   Goal: one task at a time <= 1.15 x the largest single task.
3. **DDP traffic** per rank and update for the per-task gradients of the
   shared backbone: all-reducing the T x P rows, against reduce-scattering
   them, all-reducing only the T x T Gram matrix and all-gathering the P
   combined values (ring algorithms; counted, not timed).

Usage: python benchmarks/balancing_cost.py [--reps 11] [--skip-memory]
"""
import argparse
import copy
import ctypes
import json
import logging
import os.path as osp
import random
import statistics
import subprocess
import sys
import time

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = ('cls', 'det', 'seg')
DEMO_BASES = dict(
    cls='pvtv2_b0_demo_cls',
    det='pvtv2_b0_demo_retinanet',
    seg='pvtv2_b0_demo_semfpn')
# the demo MTL configs' per-task batch sizes
BATCH_SIZES = dict(cls=6, det=4, seg=15)
WEIGHTINGS = [
    'UncertaintyWeighting', 'DynamicWeightAverage', 'RandomLossWeighting',
    'GeometricLossStrategy', 'FAMO', 'FAMO next_step', 'GradNorm'
]
AGGREGATORS = [
    'Mean', 'Sum', 'PCGrad', 'CAGrad', 'MGDA', 'IMTLG', 'NashMTL',
    'AlignedMTL', 'UPGrad'
]


def build_model():
    from mmengine.logging import MMLogger

    from mtl_pvt import register_all_modules
    register_all_modules()
    # the initialisation report of every parameter is not a figure
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    torch.manual_seed(0)
    tasks = {}
    for task in TASKS:
        path = osp.join(REPO, 'configs/_base_/models',
                        DEMO_BASES[task] + '.py')
        tasks[task] = Config.fromfile(path)[f'{task}_model']
    model = MODELS.build(
        dict(
            type='mtl_pvt.MultiTaskModel',
            backbone=dict(
                type='mtl_pvt.SharedPVTv2',
                arch=dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
                share_stages=4),
            tasks=tasks))
    model.init_weights()
    model.train()
    return model


def joint_batch(tasks=TASKS):
    from mtl_pvt.testing import task_batch
    batches = [
        task_batch([t] * BATCH_SIZES[t], seed=i) for i, t in enumerate(tasks)
    ]
    return dict(
        inputs=sum((b['inputs'] for b in batches), []),
        data_samples=sum((b['data_samples'] for b in batches), []))


def wrapper_cfg(arm):
    optimizer = dict(type='AdamW', lr=1e-4)
    if arm == 'equal':
        return dict(type='OptimWrapper', optimizer=optimizer)
    cfg = dict(
        type='mtl_pvt.MultiTaskOptimWrapper',
        optimizer=optimizer,
        stats_interval=0)
    if arm == 'stats every step':
        cfg['stats_interval'] = 1
    elif arm == 'FAMO next_step':
        cfg['weighting'] = dict(type='FAMO', variant='next_step')
    elif arm in WEIGHTINGS:
        # FAMO official: its extra forward is timed with the step (step())
        cfg['weighting'] = dict(type=arm)
    elif arm in AGGREGATORS:
        cfg['aggregator'] = dict(type=arm)
    return cfg


class _Outside:
    """Time spent in the calls it wraps (not the optimiser wrapper's)."""

    def __init__(self):
        self.seconds = 0.

    def wrap(self, fn):

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def step(model, wrapper, batch, arm):
    """Seconds of one step, and of its optimiser wrapper's own work (the
    step minus preprocessing, forward and backward)."""
    outside = _Outside()
    backward = torch.Tensor.backward
    torch.Tensor.backward = outside.wrap(backward)
    model.loss = outside.wrap(type(model).loss.__get__(model))
    preprocess = model.data_preprocessor
    preprocess.forward = outside.wrap(type(preprocess).forward.__get__(
        preprocess))
    try:
        start = time.perf_counter()
        model.train_step(copy.deepcopy(batch), wrapper)
        if arm == 'FAMO':  # what LossWeightingHook does after the step
            from mtl_pvt.structures import split_losses_by_task
            with torch.no_grad():
                data = model.data_preprocessor(copy.deepcopy(batch), True)
                losses = model(**data, mode='loss')
            wrapper.update_after_step(
                split_losses_by_task(losses, model.task_names))
        elapsed = time.perf_counter() - start
    finally:
        torch.Tensor.backward = backward
        del model.loss, preprocess.forward  # the class's methods again
    return elapsed, elapsed - outside.seconds


def step_times(reps):
    model = build_model()
    batch = joint_batch()
    arms = ['equal', 'stats every step'] + WEIGHTINGS + AGGREGATORS
    wrappers = {a: build_optim_wrapper(model, wrapper_cfg(a)) for a in arms}
    times = {a: [] for a in arms}
    own = {a: [] for a in arms}
    order = random.Random(0)
    for rep in range(reps + 2):  # the first two rounds warm up
        # a new order each round, so that no arm always follows another
        for arm in order.sample(arms, len(arms)):
            elapsed, wrapper_own = step(model, wrappers[arm], batch, arm)
            if rep >= 2:
                times[arm].append(elapsed)
                own[arm].append(wrapper_own)
    base = statistics.median(times['equal'])
    base_own = statistics.median(own['equal'])
    print(f'1. step time, demo full share, batch {BATCH_SIZES}, {reps} '
          f'rounds, {torch.get_num_threads()} threads; equal weights '
          f'{base * 1000:.0f} ms (median), of which the optimiser wrapper '
          f'{base_own * 1000:.1f} ms')
    print(f'   {"arm":24s} {"step":>7s}  {"wrapper own":>11s}  '
          f'{"excess / step":>13s}')
    for arm in arms[1:]:
        kind = 'aggregator' if arm in AGGREGATORS else 'weighting' \
            if arm in WEIGHTINGS else ''
        goal = {'aggregator': 1.15, 'weighting': 1.03}.get(kind)
        ratio = statistics.median(times[arm]) / base
        wrapper_own = statistics.median(own[arm])
        excess = (wrapper_own - base_own) / base
        mark = '' if goal is None else \
            f'  (goal <= {goal}: step {"ok" if ratio <= goal else "MISSED"}' \
            f', own {"ok" if 1 + excess <= goal else "MISSED"})'
        print(f'   {arm:24s} {ratio:6.3f}x  {wrapper_own * 1000:8.1f} ms  '
              f'{100 * excess:+12.1f} %{mark}')


def _rss_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'no {field} in /proc/self/status')


def memory_child(arm):
    """Run in a fresh process: the rise of the peak RSS in one step."""
    model = build_model()
    tasks = (arm, ) if arm in TASKS else TASKS
    batch = joint_batch(tasks)
    cfg = wrapper_cfg('PCGrad' if 'PCGrad' in arm else 'stats off')
    cfg['task_by_task'] = arm.startswith('task by task')
    wrapper = build_optim_wrapper(model, cfg)
    model.train_step(copy.deepcopy(batch), wrapper)  # optimizer state
    data = copy.deepcopy(batch)
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM, the peak RSS
    before = _rss_kib('VmRSS')
    model.train_step(data, wrapper)
    print(json.dumps(dict(peak_mib=(_rss_kib('VmHWM') - before) / 1024)))


def peak_memory():
    arms = [
        'joint', 'joint PCGrad', 'task by task', 'task by task PCGrad', *TASKS
    ]
    peaks = {}
    for arm in arms:
        out = subprocess.run([sys.executable, __file__, '--memory-child', arm],
                             capture_output=True,
                             text=True,
                             check=True).stdout.strip().splitlines()[-1]
        peaks[arm] = json.loads(out)['peak_mib']
    largest = max(TASKS, key=peaks.get)
    print('2. peak memory of one step above the process before it (MiB):')
    for arm in arms:
        print(f'   {arm:24s} {peaks[arm]:8.1f}')
    for arm in ('joint', 'joint PCGrad', 'task by task',
                'task by task PCGrad'):
        ratio = peaks[arm] / peaks[largest]
        goal = '' if 'task by task' not in arm else \
            f' (goal <= 1.15: {"ok" if ratio <= 1.15 else "MISSED"})'
        print(f'   {arm} / largest single task ({largest}): {ratio:.2f}'
              f'{goal}')


def traffic(num_tasks=3, world=8):
    """Bytes each rank sends per update, fp32, ring collectives."""
    # PVT v2-b2 backbone parameters, all shared under full sharing
    shared = 24_849_856
    f = (world - 1) / world
    full = 2 * f * num_tasks * shared * 4
    gram = (f * num_tasks * shared + 2 * f * num_tasks**2 + f * shared) * 4
    print(f'3. DDP traffic per rank and update, b2 full share, T={num_tasks}, '
          f'{world} ranks: all-reduce of the rows {full / 2**20:.0f} MiB; '
          f'reduce-scatter + Gram all-reduce + all-gather '
          f'{gram / 2**20:.0f} MiB ({gram / full:.2f}x); DDP\'s own '
          f'all-reduce of one gradient: {2 * f * shared * 4 / 2**20:.0f} MiB')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--reps', type=int, default=11)
    parser.add_argument('--skip-memory', action='store_true')
    parser.add_argument('--memory-child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child)
    step_times(args.reps)
    if not args.skip_memory:
        peak_memory()
    traffic()


if __name__ == '__main__':
    main()
