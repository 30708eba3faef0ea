"""Speed of MultiTaskBatchSampler on ImageNet / COCO / ADE20K-sized data.

No data is read: the sub-datasets only have the sizes of ImageNet-1k train
(1,281,167), COCO train2017 (117,266) and ADE20K training (20,210). Prints
the sampler's indices per second in joint and alternating mode, and the
time of ``set_position`` at step 100,000 and 10,000,000 plus the first
batch after it, next to what replaying those steps would take, to show
that resuming does not replay.

Usage: python benchmarks/sampler_speed.py [--steps 20000] [--world-size 8]
"""
import argparse
import itertools
import time

from torch.utils.data import Dataset

from mtl_pvt.datasets import (MultiTaskBatchSampler, MultiTaskDataset,
                              MultiTaskSampler)

SIZES = dict(cls=1_281_167, det=117_266, seg=20_210)
BATCH_SIZES = dict(cls=16, det=8, seg=8)  # per GPU
SETTINGS = [
    dict(mode='joint'),
    dict(mode='alternating', policy='round_robin'),
    dict(mode='alternating', policy='proportional'),
    dict(mode='alternating', policy='temperature', temperature=2.0),
    dict(
        mode='alternating',
        policy='weights',
        weights=dict(cls=2, det=1, seg=1)),
]


class SizedDataset(Dataset):
    """A dataset of ``size`` samples that are never read."""

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, idx):
        raise RuntimeError('the benchmark reads no sample')


def build(setting, world_size, rank=0):
    dataset = MultiTaskDataset({
        task: SizedDataset(size)
        for task, size in SIZES.items()
    })
    sampler = MultiTaskSampler(
        dataset, seed=0, rank=rank, world_size=world_size)
    return MultiTaskBatchSampler(sampler, batch_sizes=BATCH_SIZES, **setting)


def indices_per_second(batch_sampler, steps):
    """Indices per second and steps per second over ``steps`` batches
    (after the first, which draws each task's first permutation)."""
    iterator = iter(batch_sampler)
    next(iterator)
    start = time.perf_counter()
    num = sum(len(b) for b in itertools.islice(iterator, steps))
    seconds = time.perf_counter() - start
    return num / seconds, steps / seconds


def position_seconds(batch_sampler, step):
    """Seconds of ``set_position(step)`` plus the first batch after it."""
    start = time.perf_counter()
    batch_sampler.set_position(step)
    next(iter(batch_sampler))
    return time.perf_counter() - start


def describe(setting):
    return ' '.join(f'{k}={v}' for k, v in setting.items() if k != 'weights')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=20_000)
    parser.add_argument('--world-size', type=int, default=8)
    args = parser.parse_args()
    print(f'tasks {SIZES}, batch sizes {BATCH_SIZES} per rank, '
          f'world size {args.world_size}, rank 0')
    for setting in SETTINGS:
        batch_sampler = build(setting, args.world_size)
        per_index, per_step = indices_per_second(batch_sampler, args.steps)
        print(f'{describe(setting):48s} {per_index:12,.0f} indices/s '
              f'{per_step:10,.0f} steps/s')
        for step in (100_000, 10_000_000):
            seconds = position_seconds(build(setting, args.world_size), step)
            print(f'{"":48s} set_position({step:,}) + 1st batch: '
                  f'{seconds * 1e3:8.1f} ms (replay: ~'
                  f'{step / per_step:,.1f} s of sampling alone)')


if __name__ == '__main__':
    main()
