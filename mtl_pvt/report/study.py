"""The report of a multi-seed study: MTL arms against matched STL runs.

A study trains every run once per seed (``tools/study.py``):

- ``kind='mtl'``: a multi-task arm (``full_share``, ``partial_share_s2``,
  ``no_share``, ...), its tasks those of its config's ``model.tasks``;
- ``kind='stl'``: the matched single-task baseline of one task, the MTL
  recipe with that task alone (a one-task ``MultiTaskModel``, metrics
  keyed ``'<task>/<metric>'`` as the arms'), one per task;
- ``kind='ref'`` (optional): a reference single-task baseline of one task
  (the plain mmpretrain / mmdet / mmseg config, the paper recipe; its
  metrics without the task prefix), at most one per task.

Each seed's work dir is read by :mod:`.runs` (:func:`~.runs.load_run`:
test results, training log, dumped config). Per run and metric the report
gives the mean over the seeds, the standard deviation and the Student-t
interval of the mean (:func:`~mtl_pvt.evaluation.statistics.summarize`).
Each arm is compared seed by seed with the matched STL runs of the same
seed: its delta-m in the form of Vandenhende et al. (several metrics per
task, :func:`~mtl_pvt.evaluation.delta_m.multi_metric_delta_m`) per seed,
then summarised; and for each task's main metric (its first) a paired
t-test (:func:`~mtl_pvt.evaluation.statistics.paired_t_test`). Against
the reference baselines (not trained with the arm's recipe, so not
paired) the reference value of a metric is its mean over the reference
run's seeds, and the interval covers the arm's seeds only.

The training budget is read from the logs (:func:`~.runs.train_budget`):
per run and task the samples seen, the iterations in which the task had
samples ("updates") and the training FLOPs, i.e. samples seen x forward
FLOPs of one sample of the task path (:func:`~.runs.run_complexity` at
the given input size), so an arm whose task trained on more or fewer
samples or updates than its STL baseline is flagged beside the metrics.

This module reads and writes; the statistics are :mod:`.study_compare`'s,
the Markdown, CSV and JSON :mod:`.study_formats`', the figures
:mod:`.study_plots`'.

Examples::

    runs = dict(
        full_share=dict(kind='mtl', seeds={0: 'wd/fs_s0', 1: 'wd/fs_s1'}),
        stl_cls=dict(kind='stl', task='cls',
                     seeds={0: 'wd/cls_s0', 1: 'wd/cls_s1'}),
        ...)
    report = build_study_report(
        runs, metrics=dict(cls='accuracy/top1', det='coco/bbox_mAP',
                           seg='mIoU'), shapes=dict(cls=224))
    write_study_report(report, 'work_dirs/study/report')
"""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional

from mtl_pvt.evaluation.delta_m import finite_number, parse_metric_spec
from .inputs import check_shapes
from .runs import load_run, run_complexity
from .study_compare import baselines, compare_ref, compare_stl, summary
from .study_formats import (CSV_FIELDS, format_study_markdown, jsonable,
                            study_csv_rows)
from .study_plots import plot_study_delta_m, plot_study_metrics

RUN_KINDS = ('mtl', 'stl', 'ref')
_RUN_KEYS = ('kind', 'task', 'seeds')
_ERRORS = (FileNotFoundError, ValueError, KeyError)


# -------------------------------------------------------------- inputs --
def _check_runs(runs: Mapping, spec: Mapping) -> Dict[str, dict]:
    """``runs`` checked: name -> ``dict(kind, task, seeds)``, the seeds
    sorted."""
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError('the study report needs runs: a dict of run name -> '
                         "dict(kind='mtl' | 'stl' | 'ref', task=..., seeds="
                         f'{{seed: work_dir}}), but got {runs!r}')
    checked, baselines = {}, {}
    for name, entry in runs.items():
        if not isinstance(entry, Mapping) or \
                not {'kind', 'seeds'} <= set(entry) or \
                set(entry) - set(_RUN_KEYS):
            raise ValueError(f'run {name!r} must be dict(kind=..., task=..., '
                             f'seeds={{seed: work_dir}}), but got {entry!r}')
        kind, task, seeds = entry['kind'], entry.get('task'), entry['seeds']
        if kind not in RUN_KINDS:
            raise ValueError(f'run {name!r}: kind must be one of {RUN_KINDS}, '
                             f'but got {kind!r}')
        if (kind == 'mtl') != (task is None):
            raise ValueError(
                f'run {name!r}: an MTL run has task=None (its tasks are its '
                "config's), an STL or reference run the task it trains, but "
                f'got kind={kind!r}, task={task!r}')
        if task is not None and task not in spec:
            raise ValueError(f'run {name!r} is of task {task!r}, which has no '
                             f'metrics; the metrics are of {list(spec)}')
        if kind != 'mtl':
            other = baselines.setdefault((kind, task), name)
            if other != name:
                raise ValueError(f'runs {other!r} and {name!r} are both '
                                 f'{kind!r} runs of task {task!r}; the report '
                                 'pairs each task with one')
        checked[name] = dict(
            kind=kind, task=task, seeds=_check_seeds(name, seeds))
    return checked


def _check_seeds(name: str, seeds) -> Dict[int, str]:
    if not isinstance(seeds, Mapping) or not seeds:
        raise ValueError(f'run {name!r}: seeds must be a non-empty dict of '
                         f'seed -> work dir, but got {seeds!r}')
    for seed, work_dir in seeds.items():
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f'run {name!r}: seeds are ints, but got '
                             f'{seed!r} (-> {work_dir!r})')
        if not isinstance(work_dir, (str, os.PathLike)):
            raise ValueError(f'run {name!r}, seed {seed}: the work dir must '
                             f'be a path, but got {work_dir!r}')
    return {seed: str(seeds[seed]) for seed in sorted(seeds)}


class _Context:
    """Re-raise a reading error with the run and the seed in front."""

    def __init__(self, name: str, seed: int, work_dir: str):
        self.where = f'run {name!r}, seed {seed} (work dir {work_dir!r})'

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        # the exact types only: a subclass may take other arguments
        if kind in _ERRORS:
            text = error.args[0] if error.args else ''
            raise kind(f'{self.where}: {text}') from error
        return False


# ------------------------------------------------------------- reading --
def _load(name: str, entry: dict, spec: Mapping) -> dict:
    """Every seed of a run, its tasks and its metric values by seed."""
    loaded = {}
    for seed, work_dir in entry['seeds'].items():
        with _Context(name, seed, work_dir):
            loaded[seed] = load_run(
                work_dir, entry['task'], with_sections=False)
    tasks = {seed: run['tasks'] for seed, run in loaded.items()}
    first, *_ = tasks.values()
    if any(t != first for t in tasks.values()):
        raise ValueError(f'run {name!r}: its seeds are of other tasks: '
                         f'{tasks} (model.tasks of their configs)')
    unknown = [t for t in first if t not in spec]
    if unknown:
        raise ValueError(f'run {name!r} has task(s) {unknown}, which have no '
                         f'metrics; the metrics are of {list(spec)}')
    return dict(
        entry,
        name=name,
        tasks=first,
        loaded=loaded,
        values={
            f'{t}/{m["metric"]}': [
                _metric(name, seed, run, t, m['metric'])
                for seed, run in loaded.items()
            ]
            for t in first
            for m in spec[t]
        })


def _metric(name: str, seed: int, run: dict, task: str, metric: str) -> float:
    """One test metric of one seed, keyed as its run keys it."""
    key = f'{task}/{metric}' if run['keyed'] else metric
    metrics = run['test_metrics']
    where = (f'run {name!r}, seed {seed} (work dir {run["work_dir"]!r}, '
             f'test results {run["test_file"]})')
    if key not in metrics:
        found = sorted(k for k in metrics if k not in ('time', 'data_time'))
        raise KeyError(f'{where}: no metric {key!r} (task {task!r}); it has '
                       f'{found}')
    return finite_number(metrics[key], f'{where}: the metric {key!r}')


def _check_pairing(runs: Mapping[str, dict]) -> None:
    """Every arm's task has a matched STL run with the arm's seeds."""
    stl = baselines(runs, 'stl')
    for name, arm in runs.items():
        if arm['kind'] != 'mtl':
            continue
        for task in arm['tasks']:
            if task not in stl:
                raise ValueError(
                    f'MTL arm {name!r} has task {task!r}, but there is no '
                    f"STL run of it (kind='stl', task={task!r}) to pair with; "
                    f'the STL runs are {stl}')
            base = runs[stl[task]]
            only_arm = sorted(set(arm['seeds']) - set(base['seeds']))
            only_base = sorted(set(base['seeds']) - set(arm['seeds']))
            if only_arm or only_base:
                raise ValueError(
                    f'cannot pair MTL arm {name!r} with its STL run '
                    f'{stl[task]!r} (task {task!r}) by seed: seed(s) '
                    f'{only_arm} of {name!r} have no {stl[task]!r} run, '
                    f'seed(s) {only_base} of {stl[task]!r} no {name!r} run '
                    f"({name}: {list(arm['seeds'])}, {stl[task]}: "
                    f"{list(base['seeds'])})")


# -------------------------------------------------------- costs, budget --
def _complexity(run: dict, shapes: Mapping, with_flops: bool) -> dict:
    """Parameters and FLOPs of the run's model (its first seed's config)."""
    first = next(iter(run['loaded'].values()))
    task = None if first['keyed'] else run['task']
    report = run_complexity(first['config'], shapes, with_flops, task)
    tasks = report['tasks']
    return dict(
        params_total=report['params_total'],
        params_shared=report['params_shared'],
        params={t: tasks[t]['params']
                for t in run['tasks']},
        flops={t: tasks[t]['flops']
               for t in run['tasks']},
        input_shapes={t: tasks[t]['input_shape']
                      for t in run['tasks']})


def _budget(run: dict, flops: Mapping[str, Optional[int]]) -> dict:
    """Task -> per seed ``iters``, ``samples``, ``updates``,
    ``train_flops`` (samples x forward FLOPs per sample)."""
    budget = {}
    for task in run['tasks']:
        per_seed = [r['budget'][task] for r in run['loaded'].values()]
        entry = {
            key: [b[key] for b in per_seed]
            for key in ('iters', 'samples', 'updates')
        }
        entry['train_flops'] = [
            None if s is None or flops[task] is None else s * flops[task]
            for s in entry['samples']
        ]
        budget[task] = entry
    return budget


def _budget_flags(arm: dict, runs: Mapping[str, dict]) -> List[dict]:
    """The arm's tasks whose samples or updates differ from the matched
    STL run's at some seed (or are not logged)."""
    stl = baselines(runs, 'stl')
    flags = []
    for task in arm['tasks']:
        base = runs[stl[task]]
        for quantity in ('samples', 'updates'):
            ours = arm['budget'][task][quantity]
            theirs = base['budget'][task][quantity]
            if None in ours or None in theirs:
                status = 'unknown'
            elif ours != theirs:
                status = 'differs'
            else:
                continue
            flags.append(
                dict(
                    arm=arm['name'],
                    task=task,
                    baseline=base['name'],
                    quantity=quantity,
                    status=status,
                    seeds=list(arm['seeds']),
                    arm_values=ours,
                    baseline_values=theirs))
    return flags


# -------------------------------------------------------------- report --
def _run_row(run: dict, spec: Mapping, confidence: float) -> dict:
    loaded = list(run['loaded'].values())
    metrics = {}
    for task in run['tasks']:
        for index, m in enumerate(spec[task]):
            key = f'{task}/{m["metric"]}'
            metrics[key] = dict(
                task=task,
                metric=m['metric'],
                higher_is_better=m['higher_is_better'],
                main=index == 0,
                **summary(run['values'][key], confidence))
    return dict(
        name=run['name'],
        kind=run['kind'],
        task=run['task'],
        tasks=run['tasks'],
        seeds=list(run['seeds']),
        n_seeds=len(run['seeds']),
        single_seed=len(run['seeds']) == 1,
        work_dirs=[_portable(r['work_dir']) for r in loaded],
        test_files=[_portable(r['test_file']) for r in loaded],
        checkpoints=[_portable(r['checkpoint']) for r in loaded],
        config=loaded[0]['config'],
        metrics=metrics)


def _portable(path: Optional[str]) -> Optional[str]:
    """``path`` relative to the working directory when it lies under it
    (a committed report names no folder of the machine that made it)."""
    if not path:
        return path
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def build_study_report(runs: dict,
                       metrics: dict,
                       shapes: Optional[dict] = None,
                       with_flops: bool = True,
                       confidence: float = 0.95) -> dict:
    """Read every seed of every run and compare the arms with the STL runs.

    All inputs are read and checked before any model is built.

    Args:
        runs (dict): Run name -> ``dict(kind='mtl' | 'stl' | 'ref',
            task=None or the STL task, seeds={seed (int): work_dir})``.
        metrics (dict): Task -> its metric(s), see
            :func:`~.delta_m.parse_metric_spec`; the first of a task is its
            main metric.
        shapes (dict, optional): Input size for FLOPs by task (or kind,
            or ``''``): SIZE, ``'H,W'`` or ``(H, W)``; the standard sizes of
            ``mtl_pvt.analysis`` otherwise. Defaults to None.
        with_flops (bool): Whether to count FLOPs (the parameters are
            always counted). Defaults to True.
        confidence (float): Confidence of the intervals. Defaults to 0.95.

    Returns:
        dict: ``confidence``, ``metrics`` (the parsed spec), ``tasks``,
        ``with_flops``, ``runs`` (per run: seeds, work dirs, per metric the
        values by seed and their summary, the training budget by task and
        seed, parameters and FLOPs), ``comparisons`` (per arm against the
        matched STL runs: delta-m by seed and its summary, each task's
        change, the paired t-test of each main metric), ``references``
        (per arm against the reference runs; empty without them) and
        ``budget_flags`` (arm tasks whose samples or updates differ from
        the matched STL run's, or are not logged). Lists follow the seeds
        in increasing order.

    Raises:
        FileNotFoundError: A missing work dir, test results or config; the
            message names the run and the seed.
        ValueError: A bad run entry, metric spec or shape, seeds that do
            not pair an arm with its STL run, an arm task without STL run.
        KeyError: A metric missing from a seed's test results.
    """
    spec = parse_metric_spec(metrics)
    checked = _check_runs(runs, spec)
    shapes = check_shapes(shapes, list(spec))
    loaded = {n: _load(n, e, spec) for n, e in checked.items()}
    trained = {t for r in loaded.values() for t in r['tasks']}
    unused = [t for t in spec if t not in trained]
    if unused:
        raise ValueError(f'metrics given for task(s) {unused}, which no run '
                         f'has; the runs are of {sorted(trained)}')
    _check_pairing(loaded)
    arms = [r for r in loaded.values() if r['kind'] == 'mtl']
    comparisons = [compare_stl(a, loaded, spec, confidence) for a in arms]
    has_refs = any(r['kind'] == 'ref' for r in loaded.values())
    references = [compare_ref(a, loaded, spec, confidence)
                  for a in arms] if has_refs else []
    # everything is read and checked: now the models are built
    rows = []
    for run in loaded.values():
        row = _run_row(run, spec, confidence)
        row.update(_complexity(run, shapes, with_flops))
        run['budget'] = row['budget'] = _budget(run, row['flops'])
        rows.append(row)
    flags = [f for a in arms for f in _budget_flags(a, loaded)]
    return dict(
        confidence=confidence,
        metrics=spec,
        tasks=list(spec),
        with_flops=with_flops,
        runs=rows,
        comparisons=comparisons,
        references=references,
        budget_flags=flags)


# --------------------------------------------------------------- write --
def write_study_report(report: dict, out_dir: str) -> List[str]:
    """Write ``report.md``, ``report.json`` (every number),
    ``report.csv``, ``metrics.png`` and ``delta_m.png`` (without MTL arms:
    no ``delta_m.png``).

    Args:
        report (dict): The output of :func:`build_study_report`.
        out_dir (str): The output folder (created if needed).

    Returns:
        list[str]: The paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = [
        osp.join(out_dir, name)
        for name in ('report.md', 'report.json', 'report.csv', 'metrics.png')
    ]
    with open(paths[0], 'w') as f:
        f.write(format_study_markdown(report))
    with open(paths[1], 'w') as f:
        json.dump(jsonable(report), f, indent=2, allow_nan=False)
    with open(paths[2], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(study_csv_rows(report))
    plot_study_metrics(report, paths[3])
    if report['comparisons']:
        paths.append(osp.join(out_dir, 'delta_m.png'))
        plot_study_delta_m(report, paths[-1])
    return paths
