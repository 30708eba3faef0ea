"""One Slurm job per run of a study (``tools/study.py run --launcher
slurm``): ``tools/study.py prepare``, ``tools/slurm_train.sh``,
``tools/slurm_test.sh`` and ``tools/study.py finish`` in an sbatch job; a
suggested arm's job waits for its source's (``--dependency=afterok``).
"""
import json
import math
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .launch import (JOB_RECORD, JOB_SCRIPT, REPO, STUDY_TOOL, TOOLS, Log,
                     RunFailed, prepare)
from .plan import FINISHED, Run, run_state
from .spec import Study, StudyError

# squeue states of a job that is over
_ENDED = ('BOOT_FAIL', 'CANCELLED', 'COMPLETED', 'DEADLINE', 'FAILED',
          'NODE_FAIL', 'OUT_OF_MEMORY', 'PREEMPTED', 'TIMEOUT')


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
