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

Each seed's work dir is read by :mod:`.report` (:func:`~.report.load_run`:
test results, training log, dumped config). Per run and metric the report
gives the mean over the seeds, the standard deviation and the Student-t
interval of the mean (:func:`~.statistics.summarize`). Each arm is
compared seed by seed with the matched STL runs of the same seed: its
delta-m in the form of Vandenhende et al. (several metrics per task,
:func:`~.delta_m.multi_metric_delta_m`) per seed, then summarised; and for
each task's main metric (its first) a paired t-test
(:func:`~.statistics.paired_t_test`). Against the reference baselines
(not trained with the arm's recipe, so not paired) the reference value of
a metric is its mean over the reference run's seeds, and the interval
covers the arm's seeds only.

The training budget is read from the logs (:func:`~.report.train_budget`):
per run and task the samples seen, the iterations in which the task had
samples ("updates") and the training FLOPs, i.e. samples seen x forward
FLOPs of one sample of the task path (:func:`~.report.run_complexity` at
the given input size), so an arm whose task trained on more or fewer
samples or updates than its STL baseline is flagged beside the metrics.

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
import math
import os
import os.path as osp
from numbers import Real
from typing import Dict, List, Mapping, Optional, Sequence

from .delta_m import multi_metric_delta_m, parse_metric_spec
from .report import (DEFAULT_MAIN_METRICS, _figure, _sources, _table, load_run,
                     parse_shape, run_complexity)
from .statistics import paired_t_test, summarize

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


def _check_shapes(shapes: Optional[Mapping], tasks: Sequence[str]) -> dict:
    shapes = {key: parse_shape(s) for key, s in (shapes or {}).items()}
    unknown = sorted(
        set(shapes) - {''} - set(tasks) - set(DEFAULT_MAIN_METRICS))
    if unknown:
        raise ValueError(f'input shapes given for {unknown}, which are '
                         f'neither tasks {list(tasks)} nor cls, det, seg')
    return shapes


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
            loaded[seed] = load_run(work_dir, entry['task'])
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
    value = metrics[key]
    if isinstance(value, bool) or not isinstance(value, Real) or \
            not math.isfinite(value):
        raise ValueError(f'{where}: the metric {key!r} must be a finite '
                         f'number, but got {value!r}')
    return float(value)


def _baselines(runs: Mapping[str, dict], kind: str) -> Dict[str, str]:
    """Task -> the name of its run of ``kind`` (``'stl'`` or ``'ref'``)."""
    return {r['task']: n for n, r in runs.items() if r['kind'] == kind}


def _check_pairing(runs: Mapping[str, dict]) -> None:
    """Every arm's task has a matched STL run with the arm's seeds."""
    stl = _baselines(runs, 'stl')
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


# ---------------------------------------------------------- statistics --
def _summary(values: Sequence[float], confidence: float) -> dict:
    return dict(values=list(values), **summarize(values, confidence))


def _paired(a: Sequence[float], b: Sequence[float], confidence: float) -> dict:
    """:func:`paired_t_test`, or the one difference of a single seed."""
    if len(a) > 1:
        return paired_t_test(a, b, confidence)
    diff = a[0] - b[0]
    return dict(
        n=1,
        differences=[diff],
        mean_diff=diff,
        sd=None,
        sem=None,
        ci=None,
        half_width=None,
        confidence=confidence,
        t=None,
        df=None,
        p=None,
        identical=None)


def _seed_metrics(runs: Sequence[dict], index: int) -> Dict[str, float]:
    """The ``index``-th seed's metrics of ``runs``, keyed
    ``'<task>/<metric>'``."""
    return {
        key: values[index]
        for run in runs
        for key, values in run['values'].items()
    }


def _delta_m_summary(arm: dict, references: Sequence[Dict[str, float]],
                     spec: Mapping, confidence: float) -> dict:
    """Delta-m of each of the arm's seeds against ``references[seed]``,
    and its summary; the same for each task's change."""
    arm_spec = {t: spec[t] for t in arm['tasks']}
    per_seed = []
    for i, (seed, ref) in enumerate(zip(arm['seeds'], references)):
        try:
            per_seed.append(
                multi_metric_delta_m(_seed_metrics([arm], i), ref, arm_spec))
        except ValueError as error:  # a baseline metric of 0
            raise ValueError(f"MTL arm {arm['name']!r}, seed {seed}: delta-m "
                             f'cannot be computed: {error}') from error
    return dict(
        delta_m=_summary([d for d, _ in per_seed], confidence),
        task_changes={
            t: _summary([c[t] for _, c in per_seed], confidence)
            for t in arm['tasks']
        })


def _compare_stl(arm: dict, runs: Mapping[str, dict], spec: Mapping,
                 confidence: float) -> dict:
    """An arm against the matched STL runs, seed by seed."""
    stl = _baselines(runs, 'stl')
    bases = {t: runs[stl[t]] for t in arm['tasks']}
    references = [
        _seed_metrics(bases.values(), i) for i in range(len(arm['seeds']))
    ]
    tests = {}
    for task, base in bases.items():
        main = spec[task][0]
        key = f'{task}/{main["metric"]}'
        tests[task] = dict(
            metric=main['metric'],
            higher_is_better=main['higher_is_better'],
            baseline=base['name'],
            **_paired(arm['values'][key], base['values'][key], confidence))
    return dict(
        arm=arm['name'],
        against='stl',
        baselines={
            t: b['name']
            for t, b in bases.items()
        },
        seeds=list(arm['seeds']),
        tests=tests,
        **_delta_m_summary(arm, references, spec, confidence))


def _compare_ref(arm: dict, runs: Mapping[str, dict], spec: Mapping,
                 confidence: float) -> dict:
    """An arm against the reference runs' means (not paired)."""
    ref = _baselines(runs, 'ref')
    missing = [t for t in arm['tasks'] if t not in ref]
    result = dict(
        arm=arm['name'],
        against='ref',
        baselines={t: ref[t]
                   for t in arm['tasks'] if t in ref},
        missing=missing)
    if missing:
        return result
    means = {
        key: math.fsum(values) / len(values)
        for t in arm['tasks']
        for key, values in runs[ref[t]]['values'].items()
    }
    result.update(
        reference_values=means,
        **_delta_m_summary(arm, [means] * len(arm['seeds']), spec, confidence))
    return result


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
    stl = _baselines(runs, 'stl')
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
                **_summary(run['values'][key], confidence))
    return dict(
        name=run['name'],
        kind=run['kind'],
        task=run['task'],
        tasks=run['tasks'],
        seeds=list(run['seeds']),
        n_seeds=len(run['seeds']),
        single_seed=len(run['seeds']) == 1,
        work_dirs=[r['work_dir'] for r in loaded],
        test_files=[r['test_file'] for r in loaded],
        checkpoints=[r['checkpoint'] for r in loaded],
        config=loaded[0]['config'],
        metrics=metrics)


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
    shapes = _check_shapes(shapes, list(spec))
    loaded = {n: _load(n, e, spec) for n, e in checked.items()}
    trained = {t for r in loaded.values() for t in r['tasks']}
    unused = [t for t in spec if t not in trained]
    if unused:
        raise ValueError(f'metrics given for task(s) {unused}, which no run '
                         f'has; the runs are of {sorted(trained)}')
    _check_pairing(loaded)
    arms = [r for r in loaded.values() if r['kind'] == 'mtl']
    comparisons = [_compare_stl(a, loaded, spec, confidence) for a in arms]
    has_refs = any(r['kind'] == 'ref' for r in loaded.values())
    references = [_compare_ref(a, loaded, spec, confidence)
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


# ------------------------------------------------------------- formats --
def _g(value: Optional[float], fmt: str = '.4g') -> str:
    return '-' if value is None else format(value, fmt)


def _percent(confidence: float) -> str:
    return f'{100 * confidence:g} %'


def _ci(summary: dict, fmt: str = '.4g') -> str:
    if summary['ci'] is None:
        return '- (1 seed)'
    low, high = summary['ci']
    return f'[{low:{fmt}}, {high:{fmt}}]'


def _seeds_cell(row: dict) -> str:
    return '1 seed' if row['n_seeds'] == 1 else str(row['n_seeds'])


def _spread(values: Sequence[Optional[float]], fmt: str = ',') -> str:
    """One value if the seeds agree, else ``min–max``; ``-`` if unknown."""
    if not values or None in values:
        return '-'
    low, high = min(values), max(values)
    if low == high:
        return format(low, fmt)
    return f'{low:{fmt}}–{high:{fmt}}'


def _flagged(report: dict) -> Dict[tuple, List[str]]:
    """(run, task) -> the quantities that differ from the matched STL."""
    flagged = {}
    for flag in report['budget_flags']:
        if flag['status'] == 'differs':
            flagged.setdefault((flag['arm'], flag['task']),
                               []).append(flag['quantity'])
    return flagged


def _protocol(report: dict) -> List[str]:
    level = _percent(report['confidence'])
    runs = [[
        r['name'], r['kind'], ', '.join(r['tasks']),
        ', '.join(map(str, r['seeds'])),
        _seeds_cell(r)
    ] for r in report['runs']]
    metrics = [[
        task, f'`{m["metric"]}`',
        'higher' if m['higher_is_better'] else 'lower',
        'main: Δm, t-test, metrics.png' if i == 0 else 'Δm'
    ] for task, ms in report['metrics'].items() for i, m in enumerate(ms)]
    single = [r['name'] for r in report['runs'] if r['single_seed']]
    notes = [
        f'- Interval: the {level} Student-t confidence interval of the mean '
        f'over the n seeds of a run, mean ± t(n−1) · sd / √n, sd with n − 1 '
        f'degrees of freedom. A run with one seed is labelled "1 seed" and '
        f'has no interval (single-seed runs: '
        f'{", ".join(single) if single else "none"}).',
        '- Pairing: each MTL arm is compared seed by seed with the matched '
        "STL run of each of its tasks (kind 'stl': the MTL recipe with that "
        'task alone): Δm and the differences are computed for seed s of the '
        'arm against seed s of the STL runs, then summarised over the seeds; '
        'the t-tests are paired by seed and two-sided.',
        '- Δm (Vandenhende et al. 2021): 1/T Σ_t 1/|M_t| Σ_{m ∈ M_t} '
        '(−1)^{l_m} (M_m − M_stl,m) / |M_stl,m|, in %, over the metrics '
        'below (l_m = 1 when lower is better); positive = better than STL.',
    ]
    if report['references']:
        notes.append(
            '- Δm against the reference (paper-recipe) baselines '
            "(kind 'ref'): not paired; the reference value of a metric is its "
            "mean over the reference run's seeds, and the interval covers the "
            "arm's seeds only.")
    notes.append(
        '- Budget, from each run\'s `<timestamp>/vis_data/scalars.json`: '
        'samples seen and updates (iterations in which the task had samples) '
        'of a task at its last logged iteration, as `TaskMonitorHook` logs '
        'them (`<task>.samples_seen`, `<task>.updates`); a plain single-task '
        'run: iterations × batch size × world size and its iterations. '
        'Training FLOPs: forward FLOPs × samples (one forward of the task '
        'path per sample, no backward).')
    return [
        '## Protocol',
        _table(['Run', 'Kind', 'Tasks', 'Seeds', 'n'], runs),
        _table(['Task', 'Metric', 'Better', 'Used in'], metrics),
        '\n'.join(notes)
    ]


def _task_table(report: dict, task: str) -> str:
    level = _percent(report['confidence'])
    arrows = {True: '↑', False: '↓'}
    header, flagged = ['Run', 'Seeds'], _flagged(report)
    for m in report['metrics'][task]:
        name = f'{m["metric"]} {arrows[m["higher_is_better"]]}'
        header += [f'{name} mean', 'sd', f'{level} CI']
    header += ['Samples seen', 'Updates', 'Train FLOPs (forward × samples)']
    rows = []
    for row in report['runs']:
        if task not in row['tasks']:
            continue
        cells = [row['name'], _seeds_cell(row)]
        for m in report['metrics'][task]:
            summary = row['metrics'][f'{task}/{m["metric"]}']
            cells += [_g(summary['mean']), _g(summary['sd']), _ci(summary)]
        budget = row['budget'][task]
        marks = flagged.get((row['name'], task), [])
        cells += [
            _spread(budget['samples']) + (' ⚠' if 'samples' in marks else ''),
            _spread(budget['updates']) + (' ⚠' if 'updates' in marks else ''),
            _spread(budget['train_flops'], '.3g')
        ]
        rows.append(cells)
    return _table(header, rows, numbers=True)


def _delta_m_table(report: dict, comparisons: Sequence[dict]) -> str:
    level = _percent(report['confidence'])
    tasks = report['tasks']
    header = [
        'Arm', 'Seeds', 'Δm mean (%)', 'sd', f'{level} CI', 'Δm per seed (%)',
        *[f'{t} change (%)' for t in tasks]
    ]
    rows = []
    for c in comparisons:
        dm = c['delta_m']
        changes = [
            _g(c['task_changes'][t]['mean'], '+.2f')
            if t in c['task_changes'] else '' for t in tasks
        ]
        rows.append([
            c['arm'], '1 seed' if dm['n'] == 1 else str(dm['n']),
            _g(dm['mean'], '+.2f'),
            _g(dm['sd'], '.2f'),
            _ci(dm, '+.2f'), ', '.join(f'{v:+.2f}' for v in dm['values']),
            *changes
        ])
    return _table(header, rows, numbers=True)


def _tests_table(report: dict) -> str:
    level = _percent(report['confidence'])
    rows = []
    for c in report['comparisons']:
        for task, test in c['tests'].items():
            better = 'higher' if test['higher_is_better'] else 'lower'
            rows.append([
                c['arm'], task, f'`{test["metric"]}` ({better})',
                test['baseline'],
                '1 seed' if test['n'] == 1 else str(test['n']),
                _g(test['mean_diff'], '+.4g'),
                _ci(test, '+.4g'),
                _g(test['t'], '.3f') +
                (' (identical)' if test['identical'] else ''),
                _g(test['df'], 'd'),
                _g(test['p'], '.3g')
            ])
    return _table([
        'Arm', 'Task', 'Main metric', 'STL run', 'Seeds',
        'Mean diff (arm − STL)', f'{level} CI', 't', 'df', 'p (two-sided)'
    ], rows)


def _references_section(report: dict) -> List[str]:
    if not report['references']:
        return []
    done = [c for c in report['references'] if not c['missing']]
    parts = ['## Δm against the reference (paper-recipe) baselines']
    if done:
        bases = sorted({b for c in done for b in c['baselines'].values()})
        parts += [
            f'Reference runs: {", ".join(bases)} (mean over their seeds).',
            _delta_m_table(report, done)
        ]
    parts += [
        f'- {c["arm"]}: not computed, no reference run of task(s) '
        f'{c["missing"]}' for c in report['references'] if c['missing']
    ]
    return parts


def _budget_section(report: dict) -> List[str]:
    lines = []
    for flag in report['budget_flags']:
        per_seed = ', '.join(
            f'seed {s}: {_g(a, ",")} vs {_g(b, ",")}' for s, a, b in zip(
                flag['seeds'], flag['arm_values'], flag['baseline_values']))
        if flag['status'] == 'differs':
            lines.append(f'- ⚠ {flag["arm"]} / {flag["task"]}: the '
                         f'{flag["quantity"]} differ from its STL run '
                         f'{flag["baseline"]} ({per_seed}).')
        else:
            lines.append(f'- {flag["arm"]} / {flag["task"]}: the '
                         f'{flag["quantity"]} are not logged for it or its '
                         f'STL run {flag["baseline"]} ({per_seed}); not '
                         'compared.')
    if not lines:
        lines = [
            '- Every MTL task received the samples and updates of its '
            'matched STL run, at every seed.'
        ]
    return [
        '## Training budget: MTL arms against their STL runs', '\n'.join(lines)
    ]


def _costs_section(report: dict) -> List[str]:
    tasks = report['tasks']
    rows = []
    for row in report['runs']:
        flops = [
            _g(row['flops'][t] / 1e9, '.3f')
            if t in row['flops'] and row['flops'][t] is not None else
            ('-' if t in row['flops'] else '') for t in tasks
        ]
        rows.append([
            row['name'],
            _g(row['params_total'] / 1e6, '.3f'),
            _g(row['params_shared'] / 1e6, '.3f'), *flops
        ])
    if report['with_flops']:
        shapes = {}
        for row in report['runs']:
            for t, s in row['input_shapes'].items():
                shapes.setdefault(t, set()).add(f'{s[0]}x{s[1]}')
        sizes = ', '.join(f'{t} {"/".join(sorted(s))}'
                          for t, s in shapes.items())
        note = (f'GFLOPs: one forward of the task path on a 1x3xHxW input '
                f'({sizes}), MMEngine FlopAnalyzer, 1 multiply-add = 1 FLOP; '
                'Params: the whole model, Shared: backbone stages that '
                'several tasks run.')
    else:
        note = 'GFLOPs: not counted (no training FLOPs either).'
    return [
        '## Parameters and FLOPs',
        _table([
            'Run', 'Params (M)', 'Shared (M)', *[f'GFLOPs {t}' for t in tasks]
        ],
               rows,
               numbers=True), note
    ]


def _sources_section(report: dict) -> List[str]:
    rows = []
    for row in report['runs']:
        for seed, work_dir, test_file, checkpoint in zip(
                row['seeds'], row['work_dirs'], row['test_files'],
                row['checkpoints']):
            rows.append([
                row['name'],
                str(seed), *_sources(
                    dict(
                        work_dir=work_dir,
                        test_file=test_file,
                        checkpoint=checkpoint))
            ])
    return [
        '## Sources',
        'Test results: the latest `<timestamp>/<timestamp>.json` '
        'of each work dir; the checkpoint tested is the `load_from` of its '
        '`<timestamp>/vis_data/config.py`.',
        _table(
            ['Run', 'Seed', 'Work dir', 'Test results', 'Checkpoint tested'],
            rows)
    ]


def format_study_markdown(report: dict) -> str:
    """The report as Markdown.

    Args:
        report (dict): The output of :func:`build_study_report`.

    Returns:
        str: The text of ``report.md``.
    """
    sections = ['# Multi-seed study report', *_protocol(report)]
    sections.append('## Metrics and training budget per task')
    for task in report['tasks']:
        sections += [f'### {task}', _task_table(report, task)]
    if report['comparisons']:
        sections += [
            '## Δm against the matched STL runs (paired by seed)',
            _delta_m_table(report, report['comparisons']),
            '## Paired t-tests of the main metrics: arm − matched STL run',
            _tests_table(report)
        ]
    sections += _references_section(report)
    if report['comparisons']:
        sections += _budget_section(report)
    sections += _costs_section(report)
    sections += _sources_section(report)
    return '\n\n'.join(sections) + '\n'


_CSV_FIELDS = ('run', 'kind', 'task', 'quantity', 'against', 'n', 'mean', 'sd',
               'ci_low', 'ci_high', 'p', 'values')


def _csv_row(run: str,
             kind: str,
             task: Optional[str],
             quantity: str,
             summary: dict,
             against: str = '') -> dict:
    ci = summary.get('ci') or (None, None)
    values = summary.get('values', summary.get('differences'))
    return dict(
        run=run,
        kind=kind,
        task=task or '',
        quantity=quantity,
        against=against,
        n=summary['n'],
        mean=summary.get('mean', summary.get('mean_diff')),
        sd=summary['sd'],
        ci_low=ci[0],
        ci_high=ci[1],
        p=summary.get('p'),
        values=';'.join('' if v is None else repr(v) for v in values))


def study_csv_rows(report: dict) -> List[dict]:
    """``report.csv``, one row per run and quantity: metrics (mean, sd,
    interval, per-seed values), budget, parameters, and per arm delta-m,
    task changes and the paired differences (``against`` names what)."""
    rows = []
    for row in report['runs']:
        kind = row['kind']
        for key, s in row['metrics'].items():
            rows.append(_csv_row(row['name'], kind, s['task'], s['metric'], s))
        for task, budget in row['budget'].items():
            for quantity, values in budget.items():
                known = None not in values
                rows.append(
                    dict(
                        run=row['name'],
                        kind=kind,
                        task=task,
                        quantity=quantity,
                        n=len(values),
                        mean=math.fsum(values) / len(values) if known else '',
                        values=';'.join('' if v is None else str(v)
                                        for v in values)))
        for quantity in ('params_total', 'params_shared'):
            rows.append(
                dict(
                    run=row['name'],
                    kind=kind,
                    quantity=quantity,
                    mean=row[quantity]))
    for c in report['comparisons'] + report['references']:
        if 'delta_m' not in c:
            continue
        against = c['against']
        rows.append(
            _csv_row(c['arm'], 'mtl', None, 'delta_m_pct', c['delta_m'],
                     against))
        for task, s in c['task_changes'].items():
            rows.append(
                _csv_row(c['arm'], 'mtl', task, 'change_pct', s, against))
        for task, test in c.get('tests', {}).items():
            rows.append(
                _csv_row(c['arm'], 'mtl', task, f'diff/{test["metric"]}', test,
                         test['baseline']))
    return rows


def _jsonable(value):
    """``value`` with tuples as lists and inf/nan as strings (strict
    JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------- plots --
def plot_study_metrics(report: dict, path: str) -> None:
    """Each task's main metric per run: the mean with its interval as
    error bar, the seeds as dots; single-seed runs hollow, without bar."""
    tasks = report['tasks']
    fig = _figure(3.4 * len(tasks) + 1, 3.8)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    colors = {r['name']: f'C{i}' for i, r in enumerate(report['runs'])}
    for ax, task in zip(axes, tasks):
        main = report['metrics'][task][0]
        rows = [r for r in report['runs'] if task in r['tasks']]
        for x, row in enumerate(rows):
            s = row['metrics'][f'{task}/{main["metric"]}']
            color = colors[row['name']]
            ax.scatter(
                [x] * s['n'],
                s['values'],
                color=color,
                s=10,
                alpha=0.4,
                zorder=2)
            if s['n'] > 1:
                ax.errorbar(
                    x,
                    s['mean'],
                    yerr=s['half_width'],
                    fmt='o',
                    color=color,
                    capsize=4,
                    zorder=3)
            else:
                ax.scatter(
                    x,
                    s['mean'],
                    facecolors='none',
                    edgecolors=color,
                    marker='D',
                    s=40,
                    zorder=3)
                ax.annotate(
                    '1 seed', (x, s['mean']),
                    textcoords='offset points',
                    xytext=(4, 4),
                    fontsize=7)
        ax.set_xticks(
            range(len(rows)), [r['name'] for r in rows],
            rotation=30,
            fontsize=8)
        ax.margins(x=0.15, y=0.2)
        better = 'higher' if main['higher_is_better'] else 'lower'
        ax.set_title(
            f'{task}: {main["metric"]} ({better} is better)', fontsize=9)
        ax.grid(axis='y', alpha=0.3)
    fig.suptitle(f'Main metric per task: mean over seeds, '
                 f'{_percent(report["confidence"])} CI (dots: seeds)')
    fig.savefig(path, dpi=120)


def plot_study_delta_m(report: dict, path: str) -> None:
    """Delta-m of each arm with its interval, against total parameters
    (or arm by arm where unknown); against the references hollow."""
    params = {r['name']: r.get('params_total') for r in report['runs']}
    known = all(params[c['arm']] is not None for c in report['comparisons'])
    fig = _figure(6, 4.2)
    ax = fig.subplots()
    ax.axhline(0, color='grey', linewidth=0.8, linestyle='--')
    arms = [c['arm'] for c in report['comparisons']]
    series = [(c, 'o', 'full') for c in report['comparisons']]
    series += [(c, 's', 'none') for c in report['references']
               if 'delta_m' in c]
    for c, marker, fill in series:
        x = params[c['arm']] / 1e6 if known else arms.index(c['arm'])
        if c['against'] == 'ref':  # beside the one against STL
            x = x * 1.04 if known else x + 0.15
        dm, color = c['delta_m'], f'C{arms.index(c["arm"])}'
        ax.errorbar(
            x,
            dm['mean'],
            yerr=dm['half_width'],
            fmt=marker,
            color=color,
            mfc=color if fill == 'full' else 'none',
            capsize=4,
            zorder=3)
        label = c['arm'] + (' (1 seed)' if dm['n'] == 1 else '')
        ref = c['against'] == 'ref'
        # against STL on the left, against the references on the right
        ax.annotate(
            label + (' vs ref' if ref else ''), (x, dm['mean']),
            textcoords='offset points',
            xytext=(6 if ref else -6, 4),
            ha='left' if ref else 'right',
            fontsize=8)
    if known:
        ax.set_xlabel('total parameters (M)')
    else:
        ax.set_xticks(range(len(arms)), arms)
    ax.margins(x=0.3, y=0.25)
    ax.set_ylabel('Δm (%) vs STL, higher is better')
    ax.set_title(
        f'Δm per arm: mean over seeds, '
        f'{_percent(report["confidence"])} CI\n(filled: vs matched '
        'STL runs, hollow: vs reference baselines)',
        fontsize=9)
    fig.savefig(path, dpi=120)


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
        json.dump(_jsonable(report), f, indent=2, allow_nan=False)
    with open(paths[2], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=_CSV_FIELDS)
        writer.writeheader()
        writer.writerows(study_csv_rows(report))
    plot_study_metrics(report, paths[3])
    if report['comparisons']:
        paths.append(osp.join(out_dir, 'delta_m.png'))
        plot_study_delta_m(report, paths[-1])
    return paths
