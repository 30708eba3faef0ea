"""A signal (SIGTERM: Slurm's preemption or time limit, a plain ``kill``)
stops a ``tools/train.py`` run at the end of an iteration with a
checkpoint of that iteration and exit code 75; ``--resume`` ends with the
weights of an uninterrupted run. A resume with another recipe stops with
the differences listed before anything is loaded or written;
``--accept-recipe-change`` continues and logs them.

The runs are forks of one process that imported the libraries once
(``train_fork_server``), on the tiny demo data.
"""
import hashlib
import json
import os
import re
import signal
import time

import pytest
import torch

from mtl_pvt.engine.hooks import PREEMPTED_EXIT_CODE, PREEMPTED_FILE
from mtl_pvt.testing.demo_runs import (demo_config, load_weights,
                                       make_tiny_demo_data, tiny_options,
                                       train_command, work_dir_log)

MAX_ITERS = 8


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('preempt_demo')))


def command(work_dir, *args, options=()):
    return train_command(demo_config(), work_dir,
                         tiny_options(MAX_ITERS) + list(options), *args)


def files(work_dir):
    """Name -> SHA-256 of every file in the work dir (not the logs)."""
    return {
        name: hashlib.sha256((work_dir / name).read_bytes()).hexdigest()
        for name in os.listdir(work_dir) if (work_dir / name).is_file()
    }


def test_a_signal_saves_the_iteration_and_the_resume_is_exact(
        train_fork_server, demo_root, tmp_path):
    server = train_fork_server
    straight, stopped = tmp_path / 'straight', tmp_path / 'stopped'
    assert server.run(command(straight), demo_root, tmp_path / 's.log') == 0

    log = tmp_path / 'stopped.log'
    pid = server.start(command(stopped), demo_root, log)
    deadline = time.monotonic() + 120
    while not re.search(rf'Iter\(train\) \[\s*2/{MAX_ITERS}\]',
                        log.read_text() if log.is_file() else ''):
        assert server.running(pid) and time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(pid, signal.SIGTERM)
    assert server.wait(pid) == PREEMPTED_EXIT_CODE, log.read_text()[-3000:]
    record = json.loads((stopped / PREEMPTED_FILE).read_text())
    step = record['iteration']
    assert 2 <= step < MAX_ITERS
    checkpoint = stopped / f'iter_{step}.pth'
    assert record == dict(
        signal='SIGTERM',
        iteration=step,
        checkpoint=str(checkpoint),
        exit_code=PREEMPTED_EXIT_CODE)
    assert (stopped / 'last_checkpoint').read_text() == str(checkpoint)
    assert f'SIGTERM received: training stopped after iteration {step}; ' \
        f'resume from {checkpoint} with tools/train.py --resume' in \
        log.read_text()
    saved = load_weights(str(checkpoint))  # complete

    # a resume with another per-task batch size stops, and changes nothing
    before = files(stopped)
    code, out = server.train(
        demo_config(),
        stopped,
        tiny_options(MAX_ITERS) +
        ['train_dataloader.batch_sampler.batch_sizes.cls=2'],
        '--resume',
        cwd=demo_root,
        log=tmp_path / 'changed.log')
    assert code != 0
    assert 'RecipeChangedError: the resumed checkpoint was written by ' \
        'another recipe; ' in out
    assert '\n  train_dataloader.batch_sampler.batch_sizes.cls: 1 -> 2\n' \
        'restore these settings, or accept the change with ' \
        'tools/train.py --accept-recipe-change' in out
    assert files(stopped) == before

    code = server.run(
        command(stopped, '--resume'), demo_root, tmp_path / 'resumed.log')
    assert code == 0, (tmp_path / 'resumed.log').read_text()[-3000:]
    assert not (stopped / PREEMPTED_FILE).exists()
    expected = load_weights(str(straight / f'iter_{MAX_ITERS}.pth'))
    got = load_weights(str(stopped / f'iter_{MAX_ITERS}.pth'))
    assert got.keys() == expected.keys() == saved.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_an_accepted_recipe_change_is_logged(train_fork_server, demo_root,
                                             tmp_path):
    work_dir = tmp_path / 'work'
    code, out = train_fork_server.train(
        demo_config(),
        work_dir,
        tiny_options(1),
        cwd=demo_root,
        log=tmp_path / 'first.log')
    assert code == 0, out[-3000:]
    code, out = train_fork_server.train(
        demo_config(),
        work_dir,
        tiny_options(2) + [
            'train_dataloader.batch_sampler.batch_sizes.seg=2',
            "train_dataloader.batch_sampler.mode='alternating'"
        ],
        '--resume',
        '--accept-recipe-change',
        cwd=demo_root,
        log=tmp_path / 'second.log')
    assert code == 0, out[-3000:]
    assert 'resuming with a changed recipe (accepted by ' \
        'accept_recipe_change=True):\n' \
        "  train_dataloader.batch_sampler.batch_sizes.seg: 1 -> 2\n" \
        "  train_dataloader.batch_sampler.mode: 'joint' -> 'alternating'\n" \
        "  train_dataloader.batch_sampler.policy: (none) -> 'round_robin'" \
        in work_dir_log(str(work_dir))
    assert (work_dir / 'iter_2.pth').is_file()
