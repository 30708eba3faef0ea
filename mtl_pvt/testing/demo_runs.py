"""Tiny command-line runs of the demo multi-task configs, for tests.

The demo data is generated small (a few images per task) in a folder that
becomes the run's working directory, so the configs' relative
``data/demo/...`` roots point at it; :func:`tiny_options` shrinks batches,
iterations and workers so that one ``tools/train.py`` run takes seconds.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from typing import List, Optional, Sequence, Tuple

import torch

from mtl_pvt.demo import make_demo_data

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_MTL = osp.join(REPO, 'configs', 'demo', 'mtl')
TASKS = ('cls', 'det', 'seg')


def demo_config(name: str = 'pvtv2_b0_full_share_demo') -> str:
    """Path of a demo MTL config."""
    return osp.join(DEMO_MTL, name + '.py')


def make_tiny_demo_data(root: str) -> str:
    """Write a tiny demo data set under ``root/data/demo``; return root."""
    make_demo_data(
        osp.join(root, 'data', 'demo'),
        cls_train_per_class=1,
        cls_val_per_class=1,
        det_train=2,
        det_val=2,
        seg_train=2,
        seg_val=2)
    return root


def tiny_options(max_iters: int = 2,
                 val_interval: Optional[int] = None) -> List[str]:
    """``--cfg-options`` for a run of a few seconds: one sample per task
    and step, no workers, deterministic, a checkpoint at the end; no
    validation unless ``val_interval`` is given."""
    options = [
        f'train_dataloader.batch_sampler.batch_sizes.{t}=1' for t in TASKS
    ]
    options += [
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_cfg.max_iters={max_iters}',
        f'default_hooks.checkpoint.interval={max_iters}',
        'default_hooks.logger.interval=1',
        'randomness.deterministic=True',
    ]
    if val_interval is None:
        return options + [
            'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
            'default_hooks.checkpoint.save_best=None'
        ]
    options.append(f'train_cfg.val_interval={val_interval}')
    for task in TASKS:
        options += [
            f'val_dataloader.{task}.num_workers=0',
            f'val_dataloader.{task}.persistent_workers=False'
        ]
    return options


def train_command(config: str, work_dir: str, options: Sequence[str], *args:
                  str) -> List[str]:
    """The ``tools/train.py`` command line (this Python)."""
    return [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
        str(work_dir), *args, '--cfg-options', *options
    ]


def tool_env() -> dict:
    """The environment of a tool subprocess: the repository importable,
    one thread (few cores; torchrun's default)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH', '')) if p)
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def run_train(config: str,
              work_dir: str,
              options: Sequence[str],
              *args: str,
              cwd: str,
              timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``tools/train.py`` to its end, capturing its output as text."""
    return subprocess.run(
        train_command(config, work_dir, options, *args),
        cwd=cwd,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout)


def work_dir_log(work_dir: str) -> str:
    """The text of the run logs (``<timestamp>/<timestamp>.log``) of a work
    dir, oldest first."""
    texts = []
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, stamp + '.log')
        if osp.isfile(path):
            with open(path) as f:
                texts.append(f.read())
    return '\n'.join(texts)


def load_weights(path: str) -> dict:
    """The state dict of a checkpoint file (Runner checkpoints too)."""
    from mtl_pvt.engine import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    return checkpoint.get('state_dict', checkpoint)


class TrainForkServer:
    """Runs of ``tools/train.py`` forked from one process that imported the
    libraries once (:mod:`mtl_pvt.testing.train_fork_server`): a run starts
    in the time of building its Runner, not of importing torch and the
    OpenMMLab libraries. Each run is a process of its own, to be waited
    for or killed.

    Examples:
        >>> with TrainForkServer() as server:
        ...     pid = server.start(train_command(...), cwd, 'run.log')
        ...     os.kill(pid, signal.SIGKILL)
        ...     server.wait(pid)  # -9
    """

    def __init__(self):
        self._proc = subprocess.Popen(
            [sys.executable, '-m', 'mtl_pvt.testing.train_fork_server'],
            cwd=REPO,
            env=tool_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True)
        ready = self._proc.stdout.readline().strip()
        if ready != 'ready':
            raise RuntimeError(f'the fork server did not start: {ready!r}')

    def _ask(self, **request) -> int:
        self._proc.stdin.write(json.dumps(request) + '\n')
        self._proc.stdin.flush()
        return int(self._proc.stdout.readline())

    def start(self, command: Sequence[str], cwd: str, log: str) -> int:
        """Start ``command`` (a :func:`train_command`, its interpreter left
        out) in ``cwd``, output to ``log``; return the run's pid."""
        return self._ask(
            op='start', argv=list(command[1:]), cwd=str(cwd), log=str(log))

    @staticmethod
    def running(pid: int) -> bool:
        """Whether run ``pid`` is still running (not ended, Linux)."""
        try:
            with open(f'/proc/{pid}/stat') as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in ('Z', 'X')

    def wait(self, pid: int) -> int:
        """Wait for run ``pid``; its exit code (-9: killed)."""
        return self._ask(op='wait', pid=pid)

    def run(self, command: Sequence[str], cwd: str, log: str) -> int:
        """Run ``command`` to its end; its exit code."""
        return self.wait(self.start(command, cwd, log))

    def train(self, config: str, work_dir: str, options: Sequence[str], *args:
              str, cwd: str, log: str) -> Tuple[int, str]:
        """Run ``tools/train.py`` to its end; ``(exit code, output)``."""
        code = self.run(
            train_command(config, work_dir, options, *args), cwd, log)
        with open(log) as f:
            return code, f.read()

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
