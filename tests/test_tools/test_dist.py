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
        '-p', 'part', '--job-name=job', '--ntasks=4', '--gres=gpu:2',
        '--ntasks-per-node=2', '--cpus-per-task=5', '--kill-on-bad-exit=1',
        '--quotatype=auto', '--exclusive', sys.executable, '-u',
        f'{repo_root}/tools/{task}.py', *tail, '--cfg-options', 'a=1'
    ]


def fake_slurm_bin(root, end):
    """An srun that prints its arguments and ends as ``end`` says:
    ``'preempted'`` writes the work dir's preempted.json and exits 75, as a
    run stopped by a signal; ``'failed'`` exits 3; else 0. And an scontrol
    that prints its own."""
    root.mkdir()
    stop = dict(
        preempted='printf {} > wd/preempted.json; exit 75\n',
        failed='exit 3\n').get(end, '')
    (root / 'srun').write_text('#!/bin/sh\nprintf "srun %s\\n" "$*"\n'
                               f'echo "port=$MASTER_PORT"\n{stop}')
    (root / 'scontrol').write_text('#!/bin/sh\nprintf "scontrol %s\\n" "$*"\n')
    for name in ('srun', 'scontrol'):
        (root / name).chmod(0o755)
    return f'{root}{os.pathsep}{os.environ["PATH"]}'


@pytest.mark.parametrize(
    'case', ['cpu', 'in a job', 'requeued', 'alone', 'resume failed'])
def test_slurm_train_cpu_and_requeue(run_tool, tmp_path, case):
    """GPUS_PER_NODE=0 asks for no GPU; with --requeue, a run that stopped
    on a signal (preempted.json, exit code 75) requeues its sbatch job, a
    requeued job resumes, srun alone asks for the signal itself and exits
    75; a resume that fails before training is not requeued again."""
    (tmp_path / 'wd').mkdir()
    if case == 'resume failed':  # the earlier attempt's
        (tmp_path / 'wd' / 'preempted.json').write_text('{}')
    end = dict(cpu='ok', **{'resume failed': 'failed'}).get(case, 'preempted')
    env = dict(
        PATH=fake_slurm_bin(tmp_path / 'bin', end),
        GPUS='2',
        GPUS_PER_NODE='0',
        SIGNAL_SECONDS='0')
    if case in ('in a job', 'requeued', 'resume failed'):
        env.update(SLURM_JOB_ID='42')
    if case == 'requeued':
        env.update(SLURM_RESTART_COUNT='1')
    args = [] if case == 'cpu' else ['--requeue']
    result = run_tool('slurm_train.sh', 'part', 'job', 'cfg.py', 'wd', *args,
                      '--cfg-options', 'a=1', **env)
    lines = result.stdout.splitlines()
    srun = lines[0].split()
    assert srun[:5] == ['srun', '-p', 'part', '--job-name=job', '--ntasks=2']
    assert not [a for a in srun if 'gres' in a or 'per-node' in a]
    assert ('--signal=USR1@0' in srun) == (case == 'alone')
    assert ('--resume' in srun) == (case in ('requeued', 'resume failed'))
    # a job's own rendezvous port: jobs may share a node
    assert lines[1] == ('port=20042' if 'SLURM_JOB_ID' in env else 'port=')
    if case == 'cpu':
        assert result.returncode == 0 and len(lines) == 2
        return
    if case == 'resume failed':
        assert result.returncode == 3 and len(lines) == 2
        assert not (tmp_path / 'wd' / 'preempted.json').exists()
        return
    if case == 'alone':
        assert 'scontrol' not in result.stdout
    else:
        assert 'scontrol requeue 42' in lines
    assert lines[-1] == 'stopped on a signal (see wd/preempted.json): ' \
        'resume with --resume'
    assert result.returncode == 75
