"""Running a study locally: one run after the other (:func:`run_local`),
or several at once (:mod:`mtl_pvt.study.parallel`); one Slurm job per run
is :mod:`mtl_pvt.study.slurm`.

Every path runs the same steps for a run (:func:`run_steps`):

1. *prepare*: write the run's config into its folder (a suggested arm
   first runs ``tools/analysis_tools/suggest_branching.py`` on its source
   arm's run of the same seed);
2. ``tools/train.py CONFIG --work-dir DIR`` (``--resume`` when the folder
   holds a checkpoint but no ``study_run.json``);
3. ``tools/test.py CONFIG <last checkpoint> --work-dir DIR``;
4. *finish*: write ``study_run.json``.

On Slurm, steps 2 and 3 are ``tools/slurm_train.sh`` and
``tools/slurm_test.sh`` (srun with ``--launcher slurm``) inside an sbatch
job per run, steps 1 and 4 ``tools/study.py prepare|finish`` in the same
job.
"""
import os
import os.path as osp
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, List, Sequence

from .plan import (FINISHED, INTERRUPTED, Run, format_seconds, last_checkpoint,
                   run_config, run_dir, run_state, time_left, write_record)
from .spec import Study

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
STUDY_TOOL = osp.join(TOOLS, 'study.py')
SUGGEST_TOOL = osp.join(TOOLS, 'analysis_tools', 'suggest_branching.py')
JOB_SCRIPT = 'slurm_job.sh'
JOB_RECORD = 'slurm_job.json'
# lines of a tool's output echoed as progress
_PROGRESS = ('(train)', '(val)', '(test)')
Log = Callable[[str], None]


class RunFailed(RuntimeError):
    """A step of a run exited with an error; the message names its log."""


class RunPreempted(RunFailed):
    """Training stopped on a signal after saving a checkpoint (exit code
    75, ``PreemptionHook``): it resumes from there."""


# tools/train.py's exit code after a checkpoint on SIGTERM / SIGUSR1
# (mtl_pvt.engine.hooks.PREEMPTED_EXIT_CODE; not imported: the study
# package does not load the engine)
PREEMPTED_EXIT_CODE = 75
# a local run is resumed at most this often in a row after a preemption
MAX_LOCAL_RESUMES = 100
# the tool processes that run_command waits for (a signal is passed on)
_RUNNING: List[subprocess.Popen] = []
# set when the study runner itself got SIGTERM / SIGUSR1 (no resume then)
_STOPPING = threading.Event()


@contextmanager
def forward_signals():
    """In the main thread: pass SIGTERM and SIGUSR1 on to every running
    tool, and remember them (the yielded list, ``_STOPPING``). In another
    thread (a parallel run's) it installs nothing."""
    received: List[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def stop(number, frame):
        received.append(number)
        _STOPPING.set()
        for process in list(_RUNNING):
            process.send_signal(number)

    _STOPPING.clear()
    previous = {
        number: signal.signal(number, stop)
        for number in (signal.SIGTERM, signal.SIGUSR1)
    }
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _slot_kw(slot) -> dict:
    """``slot=`` for run_command only when there is one (one run at a
    time calls it as before)."""
    return {} if slot is None else dict(slot=slot)


def _env() -> dict:
    """The tools' environment: the repository importable, as
    ``tools/slurm_train.sh`` makes it."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH', '')) if p)
    return env


def run_command(cmd: Sequence[str],
                log_path: str,
                echo: Log = print,
                slot=None) -> None:
    """Run ``cmd`` in the current directory to its end, its output
    appended to ``log_path``; echo the training, validation and test lines.

    Args:
        slot (Slot, optional): A parallel run's resources
            (:mod:`mtl_pvt.study.parallel`): its environment variables
            (``CUDA_VISIBLE_DEVICES``, ``OMP_NUM_THREADS``), written before
            the command in the log, and its CPU affinity.

    Raises:
        RunFailed: ``cmd`` exited with an error.
    """
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    env, cores = _env(), None
    extra = ''
    if slot is not None:
        env.update(slot.env)
        extra = ' '.join(f'{k}={v}' for k, v in sorted(slot.env.items()))
        extra += f' (cores {slot.cores[0]}-{slot.cores[-1]})' \
            if slot.cores else ''
        extra += ' '
        if slot.cores and hasattr(os, 'sched_setaffinity'):
            cores = set(slot.cores)

    with open(log_path, 'a') as log:
        log.write(f'$ {extra}{shlex.join(cmd)}\n')
        log.flush()
        process = subprocess.Popen(
            list(cmd),
            env=env,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores))
            if cores else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True)
        _RUNNING.append(process)
        try:
            for line in process.stdout:
                log.write(line)
                if any(k in line for k in _PROGRESS):
                    echo('    ' + line.split(' - ')[-1].strip()[:150])
            code = process.wait()
        finally:
            _RUNNING.remove(process)
    if code == PREEMPTED_EXIT_CODE:
        raise RunPreempted(f'stopped on a signal with a checkpoint: '
                           f'{shlex.join(cmd)}\nsee {log_path}')
    if code != 0:
        raise RunFailed(f'failed (exit code {code}): {shlex.join(cmd)}\n'
                        f'see {log_path}')


# ----------------------------------------------------------- the steps --
def train_command(run: Run, resume: bool, slot=None) -> List[str]:
    """``tools/train.py``; with a slot of several GPUs, under torchrun."""
    launch = [sys.executable]
    tail = ['--resume'] if resume else []
    if slot is not None and slot.gpus > 1:
        launch += [
            '-m', 'torch.distributed.run', f'--nproc_per_node={slot.gpus}',
            f'--master_port={slot.port}'
        ]
        tail += ['--launcher', 'pytorch']
    return launch + [
        osp.join(TOOLS, 'train.py'), run.config, '--work-dir', run.work_dir
    ] + tail


def test_command(run: Run, checkpoint: str) -> List[str]:
    return [
        sys.executable,
        osp.join(TOOLS, 'test.py'), run.config, checkpoint, '--work-dir',
        run.work_dir
    ]


def suggest_command(study: Study, run: Run) -> List[str]:
    """``suggest_branching.py`` on the source run of the same seed."""
    source = Run(run.source, run.seed, 'mtl', None,
                 run_dir(study, run.source, run.seed))
    config, result = run.suggestion()
    return [
        sys.executable, SUGGEST_TOOL, source.config, source.work_dir, '--out',
        config, '--json', result, *study.arms[run.name].suggest_args
    ]


def prepare(study: Study, run: Run, slot=None) -> str:
    """Write the run's config (a suggested arm's tree first); its path.

    A resumed run keeps the config it started with (the Runner's copy).
    """
    if run_state(run) == INTERRUPTED and osp.isfile(run.config):
        return run.config
    if run.suggested and not osp.isfile(run.suggestion()[0]):
        run_command(
            suggest_command(study, run),
            osp.join(osp.dirname(run.suggestion()[0]), 'suggest.out'),
            **_slot_kw(slot))
    cfg = run_config(study, run)
    os.makedirs(run.work_dir, exist_ok=True)
    cfg.dump(run.config)
    return run.config


def finish(run: Run, seconds: float) -> dict:
    """Write the run's ``study_run.json`` from its last checkpoint."""
    return write_record(run, seconds, last_checkpoint(run))


def train_steps(run: Run, resume: bool, echo: Log = print, slot=None) -> None:
    """Train the run; after a preemption of the training process alone
    (exit code 75, a checkpoint written), resume it.

    A study runner that is stopped itself (SIGTERM or SIGUSR1) passes the
    signal on to the training process and does not resume: it stops with
    the training, which resumes when the study is run again.
    """
    with forward_signals() as stopping:
        for _ in range(MAX_LOCAL_RESUMES):
            try:
                run_command(
                    train_command(run, resume, **_slot_kw(slot)),
                    osp.join(run.work_dir, 'train.out'), echo,
                    **_slot_kw(slot))
                return
            except RunPreempted:
                if stopping or _STOPPING.is_set():
                    raise
                echo(f'    {run.label}: training stopped on a signal after '
                     'a checkpoint; resuming it')
                resume = True
        raise RunFailed(f'{run.label}: preempted {MAX_LOCAL_RESUMES} times '
                        'in a row; giving up')


def run_steps(study: Study, run: Run, echo: Log = print, slot=None) -> dict:
    """Prepare, train (or resume), test and finish one run here (with a
    parallel run's ``slot`` of resources); its record."""
    began = time.time()
    resume = run_state(run) == INTERRUPTED
    prepare(study, run, slot)
    train_steps(run, resume, echo, slot)
    run_command(
        test_command(run, last_checkpoint(run)),
        osp.join(run.work_dir, 'test.out'), echo, **_slot_kw(slot))
    return finish(run, time.time() - began)


def _describe(run: Run) -> str:
    task = f', task {run.task}' if run.task else ''
    return f'{run.kind}{task}'


def run_local(study: Study,
              runs: Sequence[Run],
              dry_run: bool = False,
              echo: Log = print) -> List[dict]:
    """Train and test every run of ``runs`` that has not finished, one
    after the other; skip finished ones, resume interrupted ones.

    Returns:
        list[dict]: The records of the runs finished now.
    """
    done = []
    total = len(runs)
    for index, run in enumerate(runs, 1):
        head = f'[{index}/{total}] {run.label}'
        state = run_state(run)
        if state == FINISHED:
            echo(f'{head}: finished before, skipped ({run.record})')
            continue
        pending = [r for r in runs[index - 1:] if run_state(r) != FINISHED]
        action = 'resume' if state == INTERRUPTED else 'train'
        left = time_left(study, pending)
        left = 'unknown' if left is None else f'about {format_seconds(left)}'
        echo(f'{head}: {action} ({_describe(run)}) in {run.work_dir}; '
             f'time left: {left}')
        if dry_run:
            for cmd in planned_commands(study, run):
                echo(f'    {shlex.join(cmd)}')
            continue
        record = run_steps(study, run, echo)
        done.append(record)
        echo(f'{head}: done in {format_seconds(record["seconds"])}')
    if not dry_run:
        echo(f'{len(done)} run(s) done, {total - len(done)} finished '
             'before')
    return done


def planned_commands(study: Study, run: Run) -> List[List[str]]:
    """The commands that :func:`run_steps` would run (dry run)."""
    commands = []
    if run.suggested and not osp.isfile(run.suggestion()[0]):
        commands.append(suggest_command(study, run))
    resume = run_state(run) == INTERRUPTED
    commands.append(train_command(run, resume))
    commands.append(
        test_command(run, f'<{osp.join(run.work_dir, "last_checkpoint")}>'))
    return commands
