"""Time of one joint multi-task training step against three STL steps.

Builds the demo multi-task model (PVT v2-b0, full sharing by default) and
the three demo STL models with the same weights, then times, on the same
batches, one joint MTL step (cls + det + seg) and the sum of the three STL
steps (forward, backward and AdamW update each). Repetitions alternate
between the two so that the machine's noise hits both alike; the figure is
the ratio of the medians. The goal is at most 1.05: sharing must not make
the joint step slower than the separate models.

Usage: python benchmarks/mtl_step_time.py [--share-stages 4] [--reps 15]
"""
import argparse
import copy
import os.path as osp
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS

from mtl_pvt import register_all_modules
from mtl_pvt.testing import task_batch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = ('cls', 'det', 'seg')
DEMO_BASES = dict(
    cls='pvtv2_b0_demo_cls',
    det='pvtv2_b0_demo_retinanet',
    seg='pvtv2_b0_demo_semfpn')
BATCH_SIZES = dict(cls=16, det=8, seg=8)  # those of the demo configs


def task_cfg(task):
    path = osp.join(REPO, 'configs/_base_/models', DEMO_BASES[task] + '.py')
    return Config.fromfile(path)[f'{task}_model']


def build_models(share_stages):
    """The MTL model and the STL models holding the same weights."""
    mtl = MODELS.build(
        dict(
            type='mtl_pvt.MultiTaskModel',
            backbone=dict(
                type='mtl_pvt.SharedPVTv2',
                arch=dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
                share_stages=share_stages),
            tasks={t: task_cfg(t)
                   for t in TASKS}))
    mtl.init_weights()
    state = mtl.state_dict()
    stl = {}
    for task in TASKS:
        model = MODELS.build(task_cfg(task))
        prefix = f'tasks.{task}.'
        weights = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
        backbone = mtl.backbone.shared_to_plain(
            {
                k[len('backbone.'):]: v
                for k, v in state.items() if k.startswith('backbone.')
            }, task)
        weights.update({'backbone.' + k: v for k, v in backbone.items()})
        model.load_state_dict(weights)
        stl[task] = model
    return mtl, stl


def optim(model):
    return build_optim_wrapper(
        model,
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4)))


def timed_step(model, wrapper, batch):
    start = time.perf_counter()
    model.train_step(copy.deepcopy(batch), wrapper)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--share-stages', type=int, default=4)
    parser.add_argument('--reps', type=int, default=15)
    args = parser.parse_args()
    register_all_modules()
    torch.manual_seed(0)
    mtl, stl = build_models(args.share_stages)
    batches = {
        t: task_batch([t] * BATCH_SIZES[t], seed=i)
        for i, t in enumerate(TASKS)
    }
    joint = dict(
        inputs=sum((batches[t]['inputs'] for t in TASKS), []),
        data_samples=sum((batches[t]['data_samples'] for t in TASKS), []))
    mtl_optim = optim(mtl)
    stl_optims = {t: optim(m) for t, m in stl.items()}
    mtl_times, stl_times = [], []
    for rep in range(args.reps + 2):  # the first two warm up
        mtl_time = timed_step(mtl, mtl_optim, joint)
        stl_time = sum(
            timed_step(stl[t], stl_optims[t], batches[t]) for t in TASKS)
        if rep >= 2:
            mtl_times.append(mtl_time)
            stl_times.append(stl_time)
    mtl_median = statistics.median(mtl_times)
    stl_median = statistics.median(stl_times)
    print(f'share_stages={args.share_stages}, batch sizes {BATCH_SIZES}, '
          f'{args.reps} repetitions, {torch.get_num_threads()} threads')
    print(f'joint MTL step: {mtl_median * 1000:.1f} ms (median)')
    print(f'sum of the 3 STL steps: {stl_median * 1000:.1f} ms (median)')
    print(f'ratio MTL / STL: {mtl_median / stl_median:.3f} (goal <= 1.05)')


if __name__ == '__main__':
    main()
