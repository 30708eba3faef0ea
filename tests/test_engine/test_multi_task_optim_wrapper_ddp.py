"""DDP exactness: 2 gloo processes make the update of 1 on the union batch.

Two classification tasks on a fully shared b0 backbone; cross-entropy is a
mean over the batch, so the mean of two half-batch losses is the loss of
the whole batch, and the per-task gradients averaged over the ranks are
the whole batch's. A non-linear aggregator sees exactly those.

In float64, so that the two ways of summing (two half batches, then the
ranks; or one batch) round alike to 1e-10 of each tensor's change on any
CPU (float32 leaves 1e-7, which a CPU's kernels can exceed).
"""
import copy
import os
import socket

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from mtl_pvt.engine import MMCPUDistributedDataParallel
from mtl_pvt.testing import make_mtl_batch as make_batch
from mtl_pvt.testing import make_mtl_model
from mtl_pvt.testing.tiny_mtl import to_float64

TASKS = ('a', 'b')
STEPS = 3
PER_TASK = 4  # per step; each of 2 ranks takes half of every task's
TOL = 1e-10  # float64 rounding, relative to each tensor's change


def make_model(tasks):
    return to_float64(make_mtl_model(tasks))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _half(batch, rank, world):
    keep = [
        i for t in TASKS for i in range(
            TASKS.index(t) * PER_TASK + rank * PER_TASK // world,
            TASKS.index(t) * PER_TASK + (rank + 1) * PER_TASK // world)
    ]
    return dict(
        inputs=[batch['inputs'][i] for i in keep],
        data_samples=[batch['data_samples'][i] for i in keep])


def _wrapper(model, method):
    from mmengine.optim import build_optim_wrapper
    return build_optim_wrapper(
        model,
        dict(
            type='mtl_pvt.MultiTaskOptimWrapper',
            optimizer=dict(type='SGD', lr=0.05, momentum=0.9),
            clip_grad=dict(max_norm=1.),
            stats_interval=0,
            **copy.deepcopy(method)))


METHODS = {
    'pcgrad': dict(aggregator=dict(type='PCGrad')),
    # no per-task gradient: DDP's own all-reduce
    'uw': dict(weighting=dict(type='UncertaintyWeighting')),
    'pcgrad-task-by-task':
    dict(aggregator=dict(type='PCGrad'), task_by_task=True),
}


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        for name, method in METHODS.items():
            model = make_model(tasks=TASKS)
            ddp = MMCPUDistributedDataParallel(
                module=model, broadcast_buffers=False)
            wrapper = _wrapper(model, method)
            ddp.train()
            for step in range(STEPS):
                batch = make_batch(tasks=TASKS, per_task=PER_TASK, seed=step)
                ddp.train_step(_half(batch, rank, world), wrapper)
            if rank == 0:
                torch.save(model.state_dict(), f'{out}.{name}')
    finally:
        torch_dist.destroy_process_group()


def _single(method):
    torch.set_num_threads(1)
    model = make_model(tasks=TASKS)
    wrapper = _wrapper(model, method)
    model.train()
    for step in range(STEPS):
        batch = make_batch(tasks=TASKS, per_task=PER_TASK, seed=step)
        model.train_step(batch, wrapper)
    return model.state_dict()


@pytest.fixture(scope='module')
def distributed(tmp_path_factory):
    """Rank 0's weights after the steps, per method (one spawn for all:
    the processes' imports take most of the time)."""
    out = str(tmp_path_factory.mktemp('ddp') / 'rank0')
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2)
    return {name: torch.load(f'{out}.{name}') for name in METHODS}


@pytest.mark.parametrize('name', list(METHODS))
def test_two_processes_equal_one_on_the_union_batch(name, distributed):
    single = _single(METHODS[name])
    changed = 0
    initial = make_model(tasks=TASKS).state_dict()
    for key, value in single.items():
        change = float((value - initial[key]).abs().max()) \
            if value.is_floating_point() else 0.
        torch.testing.assert_close(
            distributed[name][key], value, rtol=TOL, atol=TOL * change)
        changed += not torch.equal(value, initial[key])
    assert changed > 0.9 * len(single)  # the steps moved the weights
