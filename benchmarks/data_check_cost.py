"""Cost of the label checks of every training sample, against a step.

``MultiTaskDataset`` checks each packed sample's labels against its task's
class range (``check_samples=True``, the default; the val/test loops do the
same per batch). This script measures, on the demo data and the demo
multi-task model (PVT v2-b0, full sharing, the demo batch sizes of 6 cls,
4 det and 15 seg images), the time of those checks for one step's samples
and the time of one joint training step (forward, backward, AdamW), both
in the same run, and prints their ratio. The goal is under 1 %.

Usage: python benchmarks/data_check_cost.py [--reps 5]
"""
import argparse
import copy
import logging
import os
import os.path as osp
import statistics
import tempfile
import time

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper

from mtl_pvt import register_all_modules
from mtl_pvt.apis import build_model_from_config
from mtl_pvt.datasets import MultiTaskDataset
from mtl_pvt.datasets.sample_check import check_data_sample, dataset_limits
from mtl_pvt.demo import make_demo_data

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs/demo/mtl/pvtv2_b0_full_share_demo.py')


def step_samples(dataset, batch_sizes):
    """One step's packed samples: ``batch_sizes[t]`` of each task."""
    samples = []
    for task, size in batch_sizes.items():
        for i in range(size):
            local = i % dataset.task_sizes[task]
            samples.append((task, dataset[dataset.global_index(task, local)]))
    return samples


def time_checks(dataset, samples, reps):
    """Median time of checking all ``samples`` once."""
    limits = {t: dataset_limits(d) for t, d in dataset.datasets.items()}
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for task, item in samples:
            check_data_sample(item['data_samples'], task, limits[task])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_steps(cfg, samples, reps):
    """Median time of one joint training step on ``samples``."""
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    model.init_weights()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = pseudo_collate([item for _, item in samples])
    times = []
    for rep in range(reps + 2):  # two to warm up
        data = copy.deepcopy(batch)
        start = time.perf_counter()
        model.train_step(data, wrapper)
        if rep >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--reps', type=int, default=5)
    args = parser.parse_args()
    register_all_modules()
    # not the per-tensor lines of init_weights
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    cfg = Config.fromfile(CONFIG)
    batch_sizes = dict(cfg.train_dataloader.batch_sampler.batch_sizes)
    with tempfile.TemporaryDirectory() as root:
        make_demo_data(
            osp.join(root, 'data/demo'),
            cls_train_per_class=4,
            cls_val_per_class=1,
            det_train=8,
            det_val=1,
            seg_train=8,
            seg_val=1)
        cwd = os.getcwd()
        os.chdir(root)  # the config's relative data roots
        try:
            dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
            dataset_cfg.pop('type')
            dataset = MultiTaskDataset(**dataset_cfg)
            samples = step_samples(dataset, batch_sizes)
        finally:
            os.chdir(cwd)
    check = time_checks(dataset, samples, args.reps * 10)
    step = time_steps(cfg, samples, args.reps)
    print(f'demo full-share model, batch sizes {batch_sizes}, '
          f'{torch.get_num_threads()} threads, medians of {args.reps} steps')
    print(f'label checks of one step\'s {len(samples)} samples: '
          f'{check * 1000:.3f} ms')
    print(f'one joint training step: {step * 1000:.1f} ms')
    print(f'data check overhead: {100 * check / step:.3f} % of a step '
          '(goal < 1 %)')


if __name__ == '__main__':
    main()
