"""Run a study grid (MTL arms x matched STL baselines x seeds) and report it.

A study compares multi-task arms that differ only in backbone sharing
with single-task baselines trained with the same recipe, over seeds.

Study file
----------
An MMEngine config (``.py``); relative paths are relative to the current
directory, and names starting with ``_`` are the file's own helpers
(ignored)::

    work_dir = 'work_dirs/demo_study'   # default: work_dirs/<file stem>
    seeds = [0, 1, 2]                   # ints, each once
    arms = dict(                        # kind 'mtl', one run per seed
        full_share=dict(
            config='configs/demo/mtl/pvtv2_b0_full_share_affinity_demo.py'),
        partial_share_s2=dict(
            config='configs/demo/mtl/pvtv2_b0_partial_share_s2_demo.py',
            # dotted keys as --cfg-options, applied to the arm's config
            overrides={'train_dataloader.num_workers': 4}),
        no_share=dict(config='configs/demo/mtl/pvtv2_b0_no_share_demo.py'),
        # optional: the tree that the per-stage task affinity measured in
        # another arm suggests (its config needs TaskAffinityHook), seed by
        # seed: tools/analysis_tools/suggest_branching.py on that arm's run
        # of the same seed, with suggest_args added
        suggested=dict(suggest_from='full_share',
                       suggest_args=['--max-extra-params', '1.5M']))
    stl = dict(                         # optional; default dict(matched=True)
        matched=True,                   # stl_<task> runs: matched_stl_config
        matched_from='no_share',        # default: the first arm with a config
        tasks=['cls', 'det', 'seg'],    # default: all tasks
        # optional ref_<task> runs: plain STL configs, str or
        # dict(config=..., overrides=dict(...))
        reference=dict(cls='configs/demo/stl/pvtv2_b0_cls_demo.py'))
    # for the report, task -> metric, dict(metric=..., higher_is_better=...)
    # or a list of those (the first is the main metric); default: the
    # delta_m references of the matched_from arm
    metrics = dict(cls='accuracy/top1',
                   det=['coco/bbox_mAP', 'coco/bbox_mAP_50'],
                   seg=['mIoU', 'aAcc'])
    shapes = dict(cls=64, det=128, seg=128)   # FLOPs input sizes, optional
    # optional: recipe keys (dotted prefixes) that the arms may differ in
    # besides the sharing, e.g. ['optim_wrapper.weighting']
    vary = []

Before anything runs or is written the file is checked, and an error names
the file and the key: a missing config, arms with different task names
(listed per arm), seeds that are empty, not ints or given twice, unknown
keys, a ``matched_from`` or ``suggest_from`` that names no arm (or a
suggested one, or an arm that measures no affinity), reference tasks that
no arm has, and arms whose recipes differ in anything but the sharing:
``mtl_pvt.study.matched_recipe_diff`` against the ``matched_from`` arm,
per task, keys under ``vary`` excepted. That last one is an **error**: a
study promises that its arms differ only in what it varies, so a
difference must be declared in ``vary``.

Runs
----
``(run, seed)`` pairs: the arms by name (kind ``mtl``), ``stl_<task>``
(``stl``) and ``ref_<task>`` (``ref``), each in
``<work_dir>/<run>/seed_<seed>/`` with its config ``<run>.py`` (the arm's
config + overrides + ``randomness.seed=<seed>``, and the train sampler's
``seed`` if the config sets one), trained with ``tools/train.py CFG
--work-dir DIR``, tested with ``tools/test.py CFG <last_checkpoint>
--work-dir DIR``, then ``study_run.json`` (run, seed, kind, task, config,
seconds of the session that finished it, checkpoint). Per seed: the arms
in the file's order (a suggested arm after its source), the matched
baselines, the references.

Commands
--------
::

    python tools/study.py run STUDY [--only RUN ...] [--seeds S ...] \\
        [--dry-run] [--launcher none|slurm] [--partition P] [--gpus 8] \\
        [--gpus-per-node 8] [--cpus-per-task 5] [--srun-args='...'] \\
        [--sbatch-args='...'] [--requeue] [--signal-seconds 120] \\
        [--jobs N] [--gpus-per-run G] [--threads-per-run T]
    python tools/study.py report STUDY [--out DIR] [--no-flops]

``run`` trains and tests every selected run that has not finished: a run
with ``study_run.json`` is skipped, one with a checkpoint but no
``study_run.json`` is resumed (``tools/train.py ... --resume``). Locally
the runs go one after the other, printing ``[k/N] run seed S: ...`` and
the time left (the mean time of the finished runs of each kind); a failed
run stops the study (rerun to resume). A training process that stops on
a signal with a checkpoint (SIGTERM / SIGUSR1, exit code 75) is resumed
at once; a study runner that gets the signal too stops with it.
``--jobs N`` runs N runs at once, each in a slot of its own
(:mod:`mtl_pvt.study.parallel`): with ``--gpus-per-run G`` its G of the
visible GPUs (``CUDA_VISIBLE_DEVICES``; G > 1 trains under torchrun),
otherwise ``--threads-per-run`` CPU threads (default: the cores shared
out) pinned to cores of its own; a suggested arm waits for its source,
a failed run does not stop the others (the study ends with an error
naming it), the same skip and resume. ``--launcher slurm`` submits one
``sbatch`` job per missing run (``<run dir>/slurm_job.sh``: the same
steps through ``tools/slurm_train.sh`` / ``tools/slurm_test.sh``, i.e.
srun and ``--launcher slurm``); a suggested arm's job depends on its source's
(``--dependency=afterok:<id>``); a run whose job Slurm still has pending
or running (``squeue``) is not submitted again. ``--gpus-per-node 0``
submits CPU jobs (``--gpus`` processes, no ``--gres``, gloo), for CPU
partitions. ``--requeue`` submits with ``--requeue --signal=USR1@<s>``:
a run that stops on that signal (its time limit is near) or on a
preemption's SIGTERM writes a checkpoint and requeues its job, which
resumes. ``--dry-run`` prints the commands (or the sbatch lines and job
scripts) and writes nothing.

``report`` passes the finished runs (``name -> dict(kind, task,
seeds={seed: work_dir})``), ``metrics`` and ``shapes`` to
``mtl_pvt.report.study.build_study_report`` and writes the
report with ``write_study_report`` into ``--out`` (default
``<work_dir>/report``).

``prepare`` and ``finish`` (``STUDY --run RUN --seed S``) are the first
and last steps of a Slurm job.
"""
import argparse
import os.path as osp
from typing import List, Optional

from mtl_pvt.study import (SlurmOptions, StudyError, finished_runs, load_study,
                           make_slots, plan_runs, run_local, run_parallel,
                           submit_slurm)
from mtl_pvt.study.launch import RunFailed, finish, prepare
from mtl_pvt.study.plan import Run, run_dir, run_names
from mtl_pvt.utils.tool_args import show_warnings_once


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)

    run = commands.add_parser('run', help='train and test the missing runs')
    run.add_argument('study', help='the study file')
    run.add_argument('--only', nargs='+', metavar='RUN', help='these runs')
    run.add_argument(
        '--seeds', nargs='+', type=int, metavar='S', help='these seeds')
    run.add_argument(
        '--dry-run',
        action='store_true',
        help='print what would run; run and write nothing')
    run.add_argument('--launcher', choices=['none', 'slurm'], default='none')
    run.add_argument('--partition', help='Slurm partition')
    run.add_argument(
        '--gpus',
        type=int,
        default=8,
        help='GPUs per run (processes, with --gpus-per-node 0)')
    run.add_argument(
        '--gpus-per-node',
        type=int,
        help='default: min(--gpus, 8); 0: CPU jobs (no GPU asked for, gloo)')
    run.add_argument('--cpus-per-task', type=int, default=5)
    run.add_argument(
        '--srun-args',
        default='',
        help="extra srun options, one string: --srun-args='--qos=high'")
    run.add_argument(
        '--sbatch-args',
        default='',
        help="extra sbatch options, one string: --sbatch-args='--time=4:00:00'"
    )
    run.add_argument(
        '--requeue',
        action='store_true',
        help='Slurm: SIGUSR1 --signal-seconds before the time limit; a run '
        'that stops on it or on a preemption (a checkpoint, exit code 75) '
        'requeues its job, which resumes')
    run.add_argument('--signal-seconds', type=int, default=120)
    run.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='local: this many runs at once, each with its own GPUs or '
        'CPU cores')
    run.add_argument(
        '--gpus-per-run',
        type=int,
        default=0,
        help='with --jobs: GPUs of each run (0: the CPU)')
    run.add_argument(
        '--threads-per-run',
        type=int,
        help='with --jobs on the CPU: threads (and cores) of each run; '
        'default: the cores divided among the jobs')

    report = commands.add_parser('report', help='report the finished runs')
    report.add_argument('study', help='the study file')
    report.add_argument('--out', help='default: <work_dir>/report')
    report.add_argument(
        '--no-flops', action='store_true', help='count parameters only')

    for name, text in (('prepare', "write a run's config (Slurm jobs)"),
                       ('finish', "write a run's study_run.json (Slurm "
                        'jobs)')):
        step = commands.add_parser(name, help=text)
        step.add_argument('study', help='the study file')
        step.add_argument('--run', required=True)
        step.add_argument('--seed', required=True, type=int)
        if name == 'finish':
            step.add_argument('--seconds', type=float, default=0.)
    return parser.parse_args(argv)


def _one_run(study, name: str, seed: int) -> Run:
    for entry in run_names(study):
        if entry['name'] == name and seed in study.seeds:
            return Run(work_dir=run_dir(study, name, seed), seed=seed, **entry)
    raise StudyError(f'{study.path} has no run {name!r} with seed {seed}')


def report(study, out: Optional[str], no_flops: bool) -> List[str]:
    from mtl_pvt.report.study import build_study_report, write_study_report
    runs = finished_runs(study)
    if not runs:
        raise StudyError(f'{study.path}: no run has finished yet '
                         f'(python tools/study.py run {study.path})')
    kwargs = dict(with_flops=False) if no_flops else {}
    result = build_study_report(runs, study.metrics, study.shapes, **kwargs)
    paths = write_study_report(result, out
                               or osp.join(study.work_dir, 'report'))
    for path in paths:
        print(path)
    return paths


def main(argv: Optional[List[str]] = None):
    show_warnings_once()
    args = parse_args(argv)
    try:
        study = load_study(args.study)
        if args.command == 'report':
            return report(study, args.out, args.no_flops)
        if args.command in ('prepare', 'finish'):
            run = _one_run(study, args.run, args.seed)
            if args.command == 'prepare':
                return prepare(study, run)
            return finish(run, args.seconds)
        runs = plan_runs(study, args.only, args.seeds)
        if args.launcher == 'slurm':
            if not args.partition:
                raise StudyError('--launcher slurm needs --partition')
            options = SlurmOptions(args.partition, args.gpus,
                                   args.gpus_per_node, args.cpus_per_task,
                                   args.srun_args, args.sbatch_args,
                                   args.requeue, args.signal_seconds)
            return submit_slurm(study, runs, options, args.dry_run)
        if args.jobs > 1 and not args.dry_run:
            slots = make_slots(args.jobs, args.gpus_per_run,
                               args.threads_per_run)
            return run_parallel(study, runs, slots)
        return run_local(study, runs, args.dry_run)
    except (StudyError, FileNotFoundError, RunFailed) as e:
        raise SystemExit(f'error: {e}')


if __name__ == '__main__':
    main()
