"""A run killed (SIGKILL) at random moments, half of them while a
checkpoint is being written, resumes every time and ends with the weights
of an uninterrupted run (``max_keep_ckpts=1``, ``num_workers=0``).

The runs are ``tools/train.py`` processes forked from one process that
imported the libraries once (``TrainForkServer``), so that the 12 runs
take a minute rather than three (``train_fork_server``).
"""
import glob
import os
import os.path as osp
import random
import signal
import time

import pytest
import torch

from mtl_pvt.testing.demo_runs import (demo_config, load_weights,
                                       make_tiny_demo_data, tiny_options,
                                       train_command)

MAX_ITERS = 4
KILLS = 10


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('kill_demo')))


def command(work_dir, *args):
    # a checkpoint every iteration, only the last one kept
    options = tiny_options(MAX_ITERS) + [
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=1'
    ]
    return train_command(demo_config(), work_dir, options, *args)


def tmp_files(work_dir):
    """The temporary files of checkpoint writes, each write told apart."""
    found = set()
    for path in glob.glob(osp.join(work_dir, '*.tmp')):
        try:
            stat = os.stat(path)
        except FileNotFoundError:  # renamed meanwhile
            continue
        found.add((path, stat.st_ino, stat.st_mtime_ns))
    return found


def wait_for_write(server, pid, work_dir, before, nth, timeout):
    """Return once the ``nth`` checkpoint write of run ``pid`` is under
    way (a ``.tmp`` file not among ``before``), or when the run ended."""
    seen = set()
    deadline = time.monotonic() + timeout
    while server.running(pid) and time.monotonic() < deadline:
        seen |= {f[0] for f in tmp_files(work_dir) - before}
        if len(seen) >= nth:
            return
        time.sleep(0.0005)


def assert_resumable(work_dir):
    """``last_checkpoint``, once written, names a complete checkpoint."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.exists(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        assert osp.isfile(path), f'last_checkpoint names missing {path}'
        load_weights(path)  # complete: torch.load reads it


def test_kills_at_random_moments_resume_to_the_same_weights(
        train_fork_server, demo_root, tmp_path):
    server, rng = train_fork_server, random.Random(0)
    start = time.monotonic()
    code = server.run(
        command(tmp_path / 'straight'), demo_root, tmp_path / 'straight.log')
    duration = time.monotonic() - start
    assert code == 0, (tmp_path / 'straight.log').read_text()[-3000:]
    expected = load_weights(str(tmp_path / 'straight' / 'iter_4.pth'))

    # Each chain is a work dir, resumed after every kill; a chain that
    # ends before the 10th kill is checked, and the next one begins.
    chains, kills, during_write = [tmp_path / 'chain_0'], 0, 0
    # A write can end before the kill lands: kills aimed at a write go on
    # (up to 2 x KILLS in all) until at least 3 of them hit one.
    while kills < KILLS or (during_write < 3 and kills < 2 * KILLS):
        work_dir, log = str(chains[-1]), tmp_path / f'run_{kills}.log'
        before = tmp_files(work_dir)  # left by a killed write
        pid = server.start(command(work_dir, '--resume'), demo_root, log)
        if kills % 2 == 0 or kills >= KILLS:  # during its 1st or 2nd write
            wait_for_write(server, pid, work_dir, before, rng.randint(1, 2),
                           duration * 2)
            time.sleep(rng.uniform(0, 0.0005))
        else:  # at any moment of the run
            time.sleep(rng.uniform(0, duration))
        if server.running(pid):
            os.kill(pid, signal.SIGKILL)
            kills += 1
            during_write += bool(tmp_files(work_dir) - before)
        code = server.wait(pid)
        assert code in (0, -signal.SIGKILL), log.read_text()[-3000:]
        assert_resumable(work_dir)
        if code == 0:
            chains.append(tmp_path / f'chain_{len(chains)}')
        assert time.monotonic() - start < 400, 'the kills take too long'
    log = tmp_path / 'last.log'
    code = server.run(command(chains[-1], '--resume'), demo_root, log)
    assert code == 0, log.read_text()[-3000:]
    assert during_write >= 3, f'only {during_write} kills hit a write'

    for work_dir in chains:
        # max_keep_ckpts=1, and nothing left of the killed writes
        assert sorted(p for p in os.listdir(work_dir) if '.pth' in p) == \
            ['iter_4.pth'], work_dir
        assert not glob.glob(osp.join(work_dir, '*.tmp'))
        resumed = load_weights(str(work_dir / 'iter_4.pth'))
        assert resumed.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(resumed[key], value, msg=key)
