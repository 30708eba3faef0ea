"""Running a study: locally one run after the other, or one Slurm job per
run.

Both paths run the same steps for a run (:func:`run_steps`):

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
job; a suggested arm's job waits for its source's
(``--dependency=afterok:<id>``).
"""
import json
import math
import os
import os.path as osp
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .plan import (FINISHED, INTERRUPTED, Run, format_seconds, last_checkpoint,
                   run_config, run_dir, run_state, time_left, write_record)
from .spec import Study, StudyError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
STUDY_TOOL = osp.join(TOOLS, 'study.py')
SUGGEST_TOOL = osp.join(TOOLS, 'analysis_tools', 'suggest_branching.py')
JOB_SCRIPT = 'slurm_job.sh'
JOB_RECORD = 'slurm_job.json'
# lines of a tool's output echoed as progress
_PROGRESS = ('(train)', '(val)', '(test)')
# squeue states of a job that is over
_ENDED = ('BOOT_FAIL', 'CANCELLED', 'COMPLETED', 'DEADLINE', 'FAILED',
          'NODE_FAIL', 'OUT_OF_MEMORY', 'PREEMPTED', 'TIMEOUT')

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
# the tool process that run_command waits for (a signal is passed on)
_RUNNING: List[subprocess.Popen] = []


def _env() -> dict:
    """The tools' environment: the repository importable, as
    ``tools/slurm_train.sh`` makes it."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH', '')) if p)
    return env


def run_command(cmd: Sequence[str], log_path: str, echo: Log = print) -> None:
    """Run ``cmd`` in the current directory to its end, its output
    appended to ``log_path``; echo the training, validation and test lines.

    Raises:
        RunFailed: ``cmd`` exited with an error.
    """
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    with open(log_path, 'a') as log:
        log.write(f'$ {shlex.join(cmd)}\n')
        log.flush()
        process = subprocess.Popen(
            list(cmd),
            env=_env(),
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
def train_command(run: Run, resume: bool) -> List[str]:
    return [
        sys.executable,
        osp.join(TOOLS, 'train.py'), run.config, '--work-dir', run.work_dir
    ] + (['--resume'] if resume else [])


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


def prepare(study: Study, run: Run) -> str:
    """Write the run's config (a suggested arm's tree first); its path.

    A resumed run keeps the config it started with (the Runner's copy).
    """
    if run_state(run) == INTERRUPTED and osp.isfile(run.config):
        return run.config
    if run.suggested and not osp.isfile(run.suggestion()[0]):
        run_command(
            suggest_command(study, run),
            osp.join(osp.dirname(run.suggestion()[0]), 'suggest.out'))
    cfg = run_config(study, run)
    os.makedirs(run.work_dir, exist_ok=True)
    cfg.dump(run.config)
    return run.config


def finish(run: Run, seconds: float) -> dict:
    """Write the run's ``study_run.json`` from its last checkpoint."""
    return write_record(run, seconds, last_checkpoint(run))


def train_steps(run: Run, resume: bool, echo: Log = print) -> None:
    """Train the run; after a preemption of the training process alone
    (exit code 75, a checkpoint written), resume it.

    A study runner that is stopped itself (SIGTERM or SIGUSR1) passes the
    signal on to the training process and does not resume: it stops with
    the training, which resumes when the study is run again.
    """
    stopping = []

    def stop(number, frame):
        stopping.append(number)
        for process in _RUNNING:
            process.send_signal(number)

    previous = {
        number: signal.signal(number, stop)
        for number in (signal.SIGTERM, signal.SIGUSR1)
    } if threading.current_thread() is threading.main_thread() else {}
    try:
        for _ in range(MAX_LOCAL_RESUMES):
            try:
                run_command(
                    train_command(run, resume),
                    osp.join(run.work_dir, 'train.out'), echo)
                return
            except RunPreempted:
                if stopping:
                    raise
                echo(f'    {run.label}: training stopped on a signal after '
                     'a checkpoint; resuming it')
                resume = True
        raise RunFailed(f'{run.label}: preempted {MAX_LOCAL_RESUMES} times '
                        'in a row; giving up')
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_steps(study: Study, run: Run, echo: Log = print) -> dict:
    """Prepare, train (or resume), test and finish one run here; its
    record."""
    began = time.time()
    resume = run_state(run) == INTERRUPTED
    prepare(study, run)
    train_steps(run, resume, echo)
    run_command(
        test_command(run, last_checkpoint(run)),
        osp.join(run.work_dir, 'test.out'), echo)
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


# --------------------------------------------------------------- Slurm --
@dataclass
class SlurmOptions:
    """What a job of a run asks for, as ``tools/slurm_train.sh`` takes it.

    Attributes:
        partition (str): The partition.
        gpus (int): GPUs (tasks) of a run; with ``gpus_per_node=0``, CPU
            processes. Defaults to 8.
        gpus_per_node (int, optional): 0: a CPU job (no GPU asked for,
            gloo), for CPU partitions. Defaults to ``min(gpus, 8)``.
        cpus_per_task (int): Defaults to 5.
        srun_args (str): Extra srun options (``SRUN_ARGS``).
        sbatch_args (str): Extra sbatch options.
        requeue (bool): Ask for SIGUSR1 ``signal_seconds`` before the time
            limit (``sbatch --signal``); a run that stops on it or on a
            preemption (a checkpoint, exit code 75) requeues its job, which
            resumes. Defaults to False.
        signal_seconds (int): Defaults to 120.
    """
    partition: str
    gpus: int = 8
    gpus_per_node: Optional[int] = None
    cpus_per_task: int = 5
    srun_args: str = ''
    sbatch_args: str = ''
    requeue: bool = False
    signal_seconds: int = 120

    def __post_init__(self):
        if self.gpus_per_node is None:
            self.gpus_per_node = min(self.gpus, 8)
        if self.gpus < 1 or self.gpus_per_node < 0 or \
                self.gpus_per_node > self.gpus:
            raise StudyError(f'--gpus {self.gpus} and --gpus-per-node '
                             f'{self.gpus_per_node}: need 0 (CPU) <= '
                             'gpus-per-node <= gpus and gpus >= 1')
        if self.signal_seconds < 1:
            raise StudyError('--signal-seconds must be >= 1, but got '
                             f'{self.signal_seconds}')

    @property
    def cpu(self) -> bool:
        """A CPU job: no GPU asked for."""
        return self.gpus_per_node == 0

    @property
    def nodes(self) -> int:
        return 1 if self.cpu else math.ceil(self.gpus / self.gpus_per_node)


def job_name(study: Study, run: Run) -> str:
    return f'{study.name}.{run.name}.s{run.seed}'


def job_script(study: Study, run: Run, options: SlurmOptions) -> str:
    """The sbatch script of one run: the steps of :func:`run_steps` with
    ``tools/slurm_train.sh`` and ``tools/slurm_test.sh``."""
    q = shlex.quote
    name = job_name(study, run)
    python = os.environ.get('PYTHON', sys.executable)
    study_args = f'{q(study.path)} --run {q(run.name)} --seed {run.seed}'
    lines = [
        '#!/usr/bin/env bash',
        f'# {run.label} of the study {study.path}, written by '
        'tools/study.py run --launcher slurm',
        'set -eo pipefail',
        f'cd {q(os.getcwd())}',
        f'export GPUS={options.gpus} GPUS_PER_NODE={options.gpus_per_node} '
        f'CPUS_PER_TASK={options.cpus_per_task} '
        f'SIGNAL_SECONDS={options.signal_seconds}',
        f'export SRUN_ARGS={q(options.srun_args)}',
        f'export PYTHON={q(python)}',
        f'export PYTHONPATH={q(REPO)}${{PYTHONPATH:+:$PYTHONPATH}}',
        f'RUN_DIR={q(run.work_dir)}',
        f'CONFIG={q(run.config)}',
        'START=$(date +%s)',
    ]
    if run.suggested:
        lines += [
            f'# the tree of {run.source} seed {run.seed}\'s measured '
            'affinities, as this run\'s config',
            f'"$PYTHON" {q(STUDY_TOOL)} prepare {study_args}',
        ]
    lines += [
        '# resume when an earlier job of this run left a checkpoint',
        'RESUME=',
        'if [ -f "$RUN_DIR/last_checkpoint" ]; then RESUME=--resume; fi',
        f'{q(osp.join(TOOLS, "slurm_train.sh"))} {q(options.partition)} '
        f'{q(name)} "$CONFIG" "$RUN_DIR" $RESUME' +
        (' --requeue' if options.requeue else ''),
        f'{q(osp.join(TOOLS, "slurm_test.sh"))} {q(options.partition)} '
        f'{q(name)} "$CONFIG" "$(cat "$RUN_DIR/last_checkpoint")" '
        '--work-dir "$RUN_DIR"',
        f'"$PYTHON" {q(STUDY_TOOL)} finish {study_args} '
        '--seconds $(( $(date +%s) - START ))',
    ]
    return '\n'.join(lines) + '\n'


def sbatch_command(study: Study, run: Run, options: SlurmOptions, script: str,
                   dependency: Optional[str]) -> List[str]:
    cmd = [
        'sbatch', f'--job-name={job_name(study, run)}',
        f'--partition={options.partition}', f'--nodes={options.nodes}',
        f'--ntasks={options.gpus}'
    ]
    if not options.cpu:
        cmd += [
            f'--ntasks-per-node={options.gpus_per_node}',
            f'--gres=gpu:{options.gpus_per_node}'
        ]
    cmd += [
        f'--cpus-per-task={options.cpus_per_task}',
        f'--output={osp.join(run.work_dir, "slurm-%j.out")}'
    ]
    if options.requeue:
        # SIGUSR1 to the job's steps (srun) ahead of the time limit; the
        # log of a requeued job goes on in the same file
        cmd += [
            '--requeue', f'--signal=USR1@{options.signal_seconds}',
            '--open-mode=append'
        ]
    if dependency:
        cmd += [
            f'--dependency=afterok:{dependency}', '--kill-on-invalid-dep=yes'
        ]
    return cmd + shlex.split(options.sbatch_args) + [script]


def parse_job_id(output: str) -> str:
    """The job id of sbatch's output: ``Submitted batch job 42`` or, with
    ``--parsable``, ``42`` / ``42;cluster``."""
    match = re.search(r'Submitted batch job (\d+)', output)
    if match:
        return match.group(1)
    match = re.match(r'\s*(\d+)(;\S*)?\s*$', output)
    if match:
        return match.group(1)
    raise RunFailed(f'no job id in the output of sbatch: {output!r}')


def _active_job(run: Run) -> Optional[Tuple[str, str]]:
    """``(job id, state)`` of the run's submitted job if Slurm still has
    it pending or running, else None."""
    path = osp.join(run.work_dir, JOB_RECORD)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        job_id = str(json.load(f)['job_id'])
    try:
        result = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%T'],
                                capture_output=True,
                                text=True)
    except FileNotFoundError:  # no Slurm client here
        return None
    state = result.stdout.strip().split('\n')[0].strip()
    if result.returncode != 0 or not state or state in _ENDED:
        return None
    return job_id, state


def submit_slurm(study: Study,
                 runs: Sequence[Run],
                 options: SlurmOptions,
                 dry_run: bool = False,
                 echo: Log = print) -> Dict[Tuple[str, int], str]:
    """Submit one sbatch job per run of ``runs`` that has not finished
    and is not pending or running already.

    Returns:
        dict: ``(run name, seed)`` -> job id, for the runs submitted now
        and those found pending or running.
    """
    jobs: Dict[Tuple[str, int], str] = {}
    total = len(runs)
    for index, run in enumerate(runs, 1):
        head = f'[{index}/{total}] {run.label}'
        if run_state(run) == FINISHED:
            echo(f'{head}: finished before, skipped ({run.record})')
            continue
        active = _active_job(run)
        if active:
            jobs[run.key] = active[0]
            echo(f'{head}: job {active[0]} is {active[1]}: not submitted '
                 'again')
            continue
        dependency = jobs.get(run.depends_on) if run.depends_on else None
        if run.depends_on and dependency is None and dry_run:
            dependency = f'<job of {run.depends_on[0]} seed {run.seed}>'
        script_path = osp.join(run.work_dir, JOB_SCRIPT)
        cmd = sbatch_command(study, run, options, script_path, dependency)
        script = job_script(study, run, options)
        if dry_run:
            echo(f'{head}: {shlex.join(cmd)}')
            echo('    ' + script.rstrip().replace('\n', '\n    '))
            continue
        if not run.suggested:
            prepare(study, run)
        os.makedirs(run.work_dir, exist_ok=True)
        with open(script_path, 'w') as f:
            f.write(script)
        os.chmod(script_path, 0o755)
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RunFailed(f'sbatch failed (exit code {result.returncode}) '
                            f'for {run.label}: {shlex.join(cmd)}\n'
                            f'{result.stdout}{result.stderr}')
        job_id = parse_job_id(result.stdout)
        with open(osp.join(run.work_dir, JOB_RECORD), 'w') as f:
            json.dump(
                dict(job_id=job_id, dependency=dependency, command=cmd), f)
        jobs[run.key] = job_id
        after = f' (after job {dependency})' if dependency else ''
        echo(f'{head}: submitted job {job_id}{after}')
    return jobs
