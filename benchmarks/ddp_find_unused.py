"""Cost of DDP's ``find_unused_parameters`` for the multi-task model.

Alternating task batches need ``find_unused_parameters=True`` under DDP
(the other tasks' parameters get no gradient in a step; see
``mtl_pvt.engine.model_wrappers.configure_unused_parameters``). This
measures what the search costs: two gloo processes on the CPU train the
demo multi-task model (PVT v2-b0, full sharing) on the same joint batches
with the search off and on, alternating between the two settings, and
print the median step times and their ratio. It also checks that an
alternating step (one task) trains with the search on.

Usage: python benchmarks/ddp_find_unused.py [--steps 10]
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.optim import build_optim_wrapper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtl_step_time import BATCH_SIZES, TASKS, build_models  # noqa: E402

from mtl_pvt import register_all_modules  # noqa: E402
from mtl_pvt.engine import MMCPUDistributedDataParallel  # noqa: E402
from mtl_pvt.testing import task_batch  # noqa: E402


def wrapped(find_unused):
    torch.manual_seed(0)
    model, _ = build_models(share_stages=4)
    ddp = MMCPUDistributedDataParallel(
        module=model,
        broadcast_buffers=False,
        find_unused_parameters=find_unused)
    optim = build_optim_wrapper(
        ddp.module,
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4)))
    return ddp, optim


def worker(rank, world_size, steps, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT='29517')
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    torch.set_num_threads(1)  # one core per process
    register_all_modules()
    batch = task_batch([t for t in TASKS for _ in range(BATCH_SIZES[t] // 4)],
                       seed=rank)
    models = {flag: wrapped(flag) for flag in (False, True)}
    times = {False: [], True: []}
    for step in range(steps + 2):
        for flag, (ddp, optim) in models.items():
            dist.barrier()
            start = time.perf_counter()
            ddp.train_step(batch, optim)
            if step >= 2:
                times[flag].append(time.perf_counter() - start)
    # one task only, as in an alternating step: needs the search
    ddp, optim = models[True]
    ddp.train_step(task_batch(['seg', 'seg'], seed=rank), optim)
    ddp.train_step(task_batch(['cls', 'cls'], seed=rank), optim)
    if rank == 0:
        results.update({
            flag: statistics.median(t)
            for flag, t in times.items()
        })
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=10)
    args = parser.parse_args()
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(worker, args=(2, args.steps, results), nprocs=2)
        off, on = results[False], results[True]
    print(f'2 gloo processes, 1 thread each, joint batches of '
          f'{sum(BATCH_SIZES.values()) // 4} images per process, '
          f'{args.steps} steps')
    print(f'find_unused_parameters=False: {off * 1000:.1f} ms per step')
    print(f'find_unused_parameters=True:  {on * 1000:.1f} ms per step')
    print(f'cost of the search: x{on / off:.3f}')
    print('alternating steps (one task each) with the search: ran')


if __name__ == '__main__':
    main()
