"""Launcher scripts: torchrun on the CPU (gloo) and the srun command lines.
"""
import os
import pickle
import socket
import sys

import pytest

# Hide GPUs: these tests are about the CPU (gloo) path, whatever the host.
CPU_ONLY = dict(CUDA_VISIBLE_DEVICES='')


def free_port() -> str:
    """A TCP port nothing listens on now, for torchrun's rendezvous."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


def test_dist_train_on_cpu(run_tool, tiny_cls_config, tmp_path):
    work_dir = tmp_path / 'work_dir'
    result = run_tool(
        'dist_train.sh',
        tiny_cls_config,
        2,
        '--work-dir',
        work_dir,
        timeout=240,
        PORT=free_port(),
        **CPU_ONLY)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert (work_dir / 'iter_4.pth').is_file()
    assert 'Distributed training: True' in output
    assert 'GPU number: 2' in output  # MMEngine's name for the world size
    assert "dist_cfg=dict(backend='gloo')" in output
    assert 'Iter(train) [4/4]' in output


def test_dist_test_on_cpu(run_tool, tiny_cls_checkpoint, tmp_path):
    config, checkpoint = tiny_cls_checkpoint
    out = tmp_path / 'preds.pkl'
    result = run_tool(
        'dist_test.sh',
        config,
        checkpoint,
        2,
        '--work-dir',
        tmp_path / 'work_dir',
        '--out',
        out,
        timeout=240,
        PORT=free_port(),
        **CPU_ONLY)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    # Both ranks' predictions, gathered over gloo, in dataset order.
    predictions = pickle.loads(out.read_bytes())
    assert [p['sample_idx'] for p in predictions] == [0, 1, 2, 3]


@pytest.mark.parametrize('task,path,tail', [
    ('train', 'wd', ['cfg.py', '--work-dir=wd', '--launcher', 'slurm']),
    ('test', 'ckpt.pth', ['cfg.py', 'ckpt.pth', '--launcher', 'slurm']),
])
def test_slurm_command_line(run_tool, repo_root, tmp_path, task, path, tail):
    # A stand-in srun that prints its arguments, one per line.
    fake_bin = tmp_path / 'bin'
    fake_bin.mkdir()
    (fake_bin / 'srun').write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake_bin / 'srun').chmod(0o755)
    result = run_tool(
        f'slurm_{task}.sh',
        'part',
        'job',
        'cfg.py',
        path,
        '--cfg-options',
        'a=1',
        PATH=f'{fake_bin}{os.pathsep}{os.environ["PATH"]}',
        GPUS='4',
        GPUS_PER_NODE='2',
        SRUN_ARGS='--quotatype=auto --exclusive')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        '-p', 'part', '--job-name=job', '--gres=gpu:2', '--ntasks=4',
        '--ntasks-per-node=2', '--cpus-per-task=5', '--kill-on-bad-exit=1',
        '--quotatype=auto', '--exclusive', sys.executable, '-u',
        f'{repo_root}/tools/{task}.py', *tail, '--cfg-options', 'a=1'
    ]
