"""PreemptionHook: the note of a signal, agreed by every rank, a stop with
the checkpoint to resume from; an epoch-based loop writes none."""
import json
import os
import signal
import socket
from types import SimpleNamespace

import pytest
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub, MMLogger

from mtl_pvt.engine.hooks import (PREEMPTED_EXIT_CODE, PREEMPTED_FILE,
                                  PreemptionHook, TrainingPreempted)


def fake_runner(tmp_path, by_epoch):
    hub = MessageHub.get_instance(f'preempt_{tmp_path.name}')
    hub.update_info('last_ckpt', str(tmp_path / 'epoch_1.pth'))
    return SimpleNamespace(
        hooks=[CheckpointHook(interval=1, by_epoch=by_epoch)],
        message_hub=hub,
        iter=5,
        epoch=1,
        work_dir=str(tmp_path),
        logger=MMLogger.get_instance('preempt_test'))


def test_epoch_based_loop_stops_without_a_mid_epoch_checkpoint(tmp_path):
    runner = fake_runner(tmp_path, by_epoch=True)
    (tmp_path / PREEMPTED_FILE).write_text('{}')  # of an earlier run
    hook = PreemptionHook()
    before = signal.getsignal(signal.SIGUSR1)
    hook.before_train(runner)
    assert not (tmp_path / PREEMPTED_FILE).exists()
    hook.after_train_iter(runner, batch_idx=2)  # no signal: goes on
    os.kill(os.getpid(), signal.SIGUSR1)
    with pytest.raises(TrainingPreempted) as stop:
        hook.after_train_iter(runner, batch_idx=2)
    assert stop.value.code == PREEMPTED_EXIT_CODE
    assert stop.value.checkpoint == str(tmp_path / 'epoch_1.pth')
    assert str(stop.value) == (
        'SIGUSR1 received: training stopped after iteration 6; resume '
        f'from {tmp_path}/epoch_1.pth with tools/train.py --resume')
    assert json.loads((tmp_path / PREEMPTED_FILE).read_text()) == dict(
        signal='SIGUSR1',
        iteration=6,
        checkpoint=str(tmp_path / 'epoch_1.pth'),
        exit_code=PREEMPTED_EXIT_CODE)
    hook.after_train(runner)
    assert signal.getsignal(signal.SIGUSR1) == before


def test_bad_signal_names():
    for name in ('SIGKILL', 'SIGNOPE', 9):
        with pytest.raises(ValueError, match='not a signal that a process'):
            PreemptionHook(signals=[name])


def _rank(rank, port, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group('gloo', rank=rank, world_size=2)
    hook = PreemptionHook()
    agreed = [hook._agreed_signal()]
    if rank == 1:  # the signal reached one rank only
        hook._note(int(signal.SIGTERM), None)
    agreed.append(hook._agreed_signal())
    results.put((rank, agreed))
    torch_dist.destroy_process_group()


def test_every_rank_agrees_on_a_signal_that_reached_one():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    context = mp.get_context('fork')
    results = context.Queue()
    workers = [
        context.Process(target=_rank, args=(rank, port, results))
        for rank in range(2)
    ]
    for worker in workers:
        worker.start()
    got = dict(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert got == {0: [0, signal.SIGTERM], 1: [0, signal.SIGTERM]}
