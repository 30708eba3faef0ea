"""The comparison table: single-task baselines against multi-task runs.

Each task is compared by its main metric: the study's ``main_metrics``,
else that of the task's kind (:attr:`~mtl_pvt.tasks.TaskKind.main_metric`,
the kind read from the runs' configs). Delta-m is recomputed from the
metrics read, with :func:`~mtl_pvt.evaluation.delta_m` and the STL runs'
metrics as references; the MTL run's own ``'mtl/delta_m'`` is never used.
"""
from numbers import Real
from typing import Dict, Mapping, Optional, Sequence

from mtl_pvt.evaluation.delta_m import delta_m, relative_changes
from .inputs import check_shapes, kind_names
from .runs import load_run, run_complexity
from .section import section_keys

STL_NAME = 'stl'
_TIME_KEYS = ('time', 'data_time')


# ---------------------------------------------------------- main metrics --
def default_main_metric(task: str, kind) -> dict:
    """The main metric of ``task`` by its kind: ``dict(metric,
    higher_is_better)`` of the kind's ``main_metric`` and
    ``higher_is_better``.

    Args:
        task (str): The task name, for the message.
        kind (TaskKind | str | None): Its kind (or kind name); None for a
            task of no known kind.

    Raises:
        ValueError: ``kind`` is None.
    """
    from mtl_pvt.tasks import get_kind
    if kind is None:
        raise ValueError(
            f'task {task!r} is of no known task kind (the kinds are '
            f'{kind_names()}), so it has no default main metric: give it in '
            f'main_metrics, e.g. main_metrics=dict({task}=dict('
            "metric='METRIC', higher_is_better=True))")
    kind = get_kind(kind)
    return dict(
        metric=kind.main_metric, higher_is_better=kind.higher_is_better)


def parse_main_metrics(tasks: Sequence[str],
                       cfg: Optional[Mapping] = None,
                       kinds: Optional[Mapping] = None) -> Dict[str, dict]:
    """Each task's main metric and its direction.

    Args:
        tasks (Sequence[str]): The task names.
        cfg (Mapping, optional): Task -> metric name, or ``dict(metric=...,
            higher_is_better=True)``, over the defaults of the tasks' kinds
            (:func:`default_main_metric`). Defaults to None.
        kinds (Mapping, optional): Task -> its kind (a ``TaskKind``, its
            name, or None for a task of no known kind). Defaults to None
            (no kind known: every task needs ``cfg``).

    Returns:
        dict[str, dict]: Task -> ``dict(metric, higher_is_better)``.

    Raises:
        ValueError: A task without main metric (of no known kind and not
            in ``cfg``), a bad entry, or one given for no task.
    """
    cfg, kinds = dict(cfg or {}), dict(kinds or {})
    unknown = sorted(set(cfg) - set(tasks))
    if unknown:
        raise ValueError(f'main_metrics given for {unknown}, which are not '
                         f'tasks of the study {sorted(tasks)}')
    main = {}
    for task in tasks:
        entry = cfg[task] if task in cfg else default_main_metric(
            task, kinds.get(task))
        if isinstance(entry, str):
            entry = dict(metric=entry)
        if not isinstance(entry, Mapping) or 'metric' not in entry or \
                set(entry) - {'metric', 'higher_is_better'}:
            raise ValueError(
                f'main_metrics.{task} must be a metric name or dict(metric='
                f'..., higher_is_better=True), but got {entry!r}')
        main[task] = dict(
            metric=entry['metric'],
            higher_is_better=entry.get('higher_is_better', True))
    return main


def _stl_metric(run: dict, task: str, metric: str) -> float:
    """The main metric of an STL run's test results (``'<task>/<metric>'``
    for a one-task ``MultiTaskModel``)."""
    metrics = run['test_metrics']
    if run.get('keyed'):
        metric = f'{task}/{metric}'
    if not isinstance(metrics.get(metric), Real):
        found = sorted(k for k in metrics if k not in _TIME_KEYS)
        raise KeyError(f'the STL test results {run["test_file"]} have no '
                       f'metric {metric!r} (main metric of {task!r}); they '
                       f'have {found}')
    return float(metrics[metric])


def _check_tasks(stl: Mapping[str, dict], name: str, run: dict) -> None:
    if set(run['tasks']) != set(stl):
        raise ValueError(
            f'MTL run {name!r} ({run["work_dir"]}) has the tasks '
            f'{sorted(run["tasks"])} (model.tasks of {run["config"]}), but '
            f'the STL runs are of {sorted(stl)}')


def _task_kinds(stl: Mapping[str, dict],
                mtl: Mapping[str, dict]) -> Dict[str, Optional[str]]:
    """Task -> kind name: that of its STL run's config, else of the first
    MTL run's config that knows it (None: no run does)."""
    runs = [*stl.values(), *mtl.values()]
    return {
        task: next((r['kinds'][task]
                    for r in runs if r['kinds'].get(task)), None)
        for task in stl
    }


# ----------------------------------------------------------------- rows --
def _cost(report: dict) -> dict:
    """The numbers of :func:`run_complexity` that the report shows."""
    cost = dict(
        params_total=report['params_total'],
        params_shared=report['params_shared'])
    for key, name in (('params', 'params'), ('flops', 'flops'),
                      ('input_shapes', 'input_shape')):
        cost[key] = {t: r[name] for t, r in report['tasks'].items()}
    return cost


def _sum(values) -> Optional[float]:
    values = list(values)
    return None if None in values else sum(values)


def _stl_row(stl: Mapping[str, dict], costs: Mapping[str, dict],
             references: dict) -> dict:
    """The STL baseline: the single-task runs together."""
    metrics = {t: ref['stl'] for t, ref in references.items()}
    keyed = {
        f'{t}/{ref["metric"]}': ref['stl']
        for t, ref in references.items()
    }
    per_task = {
        task:
        dict(
            work_dir=run['work_dir'],
            test_file=run['test_file'],
            checkpoint=run['checkpoint'],
            config=run['config'],
            step_time=run['train']['step_time'],
            train_time=run['train']['train_time'],
            test_time=run['test_time'])
        for task, run in stl.items()
    }
    return dict(
        name=STL_NAME,
        type='stl',
        runs=per_task,
        metrics=metrics,
        changes=relative_changes(keyed, references),
        delta_m=delta_m(keyed, references),
        params_total=sum(c['params_total'] for c in costs.values()),
        params_shared=0,
        params={
            t: c['params'][t]
            for t, c in costs.items()
        },
        flops={
            t: c['flops'][t]
            for t, c in costs.items()
        },
        input_shapes={
            t: c['input_shapes'][t]
            for t, c in costs.items()
        },
        step_time=_sum(r['step_time'] for r in per_task.values()),
        train_time=_sum(r['train_time'] for r in per_task.values()),
        test_time=_sum(r['test_time'] for r in per_task.values()),
        loss_curves={
            t: run['loss_curves'][t]
            for t, run in stl.items()
        })


def _mtl_row(name: str, run: dict, references: dict) -> dict:
    """One MTL run, its metrics against the STL references."""
    keyed = {}
    for task, ref in references.items():
        key = f'{task}/{ref["metric"]}'
        if not isinstance(run['test_metrics'].get(key), Real):
            found = sorted(k for k in run['test_metrics'] if '/' in k)
            raise KeyError(f'the MTL test results {run["test_file"]} have '
                           f'no metric {key!r}; they have {found}')
        keyed[key] = float(run['test_metrics'][key])
    return dict(
        name=name,
        type='mtl',
        work_dir=run['work_dir'],
        test_file=run['test_file'],
        checkpoint=run['checkpoint'],
        config=run['config'],
        metrics={
            t: keyed[f'{t}/{r["metric"]}']
            for t, r in references.items()
        },
        changes=relative_changes(keyed, references),
        delta_m=delta_m(keyed, references),
        step_time=run['train']['step_time'],
        train_time=run['train']['train_time'],
        test_time=run['test_time'],
        loss_curves=run['loss_curves'],
        **{key: run.get(key)
           for key in section_keys()})


def build_report(stl: Mapping[str, str],
                 mtl: Mapping[str, str],
                 main_metrics: Optional[Mapping] = None,
                 shapes: Optional[Mapping] = None,
                 with_flops: bool = True) -> dict:
    """Read the runs and compare each MTL run with the STL runs.

    All inputs are read and checked before the models are built.

    Args:
        stl (Mapping[str, str]): Task -> work dir of its single-task run.
        mtl (Mapping[str, str]): Run name -> work dir of a multi-task run.
        main_metrics (Mapping, optional): Task -> main metric, see
            :func:`parse_main_metrics`; a task left out gets that of its
            kind, as the runs' configs give it. Defaults to None.
        shapes (Mapping, optional): Input size by task, kind or ``''``:
            SIZE, ``'H,W'`` or ``(H, W)``; the standard ones of the tasks'
            kinds otherwise. Defaults to None.
        with_flops (bool): Whether to count FLOPs. Defaults to True.

    Returns:
        dict: ``tasks``, ``main_metrics``, ``references`` (the ``delta_m``
        config made of the STL metrics) and ``runs``: the STL baseline,
        then the MTL runs (name, metrics, changes in %, delta-m in %,
        params, FLOPs, times in seconds, loss curves, the sections' data:
        task affinity).

    Raises:
        FileNotFoundError: A missing work dir, test results or config.
        ValueError: No runs, runs on other tasks, a bad main metric, a
            task of no known kind without one, or a bad input shape or one
            for no task.
        KeyError: A main metric missing from a run's test results.
    """
    if not stl or not mtl:
        raise ValueError('the report needs STL runs and MTL runs, but got '
                         f'stl={dict(stl)!r}, mtl={dict(mtl)!r}')
    shapes = check_shapes(shapes, sorted(stl))
    stl_runs = {task: load_run(d, task) for task, d in stl.items()}
    mtl_runs = {name: load_run(d) for name, d in mtl.items()}
    for name, run in mtl_runs.items():
        _check_tasks(stl_runs, name, run)
    main = parse_main_metrics(
        list(stl), main_metrics, _task_kinds(stl_runs, mtl_runs))
    references = {
        task:
        dict(
            metric=m['metric'],
            stl=_stl_metric(stl_runs[task], task, m['metric']),
            higher_is_better=m['higher_is_better'])
        for task, m in main.items()
    }
    # every metric is found before any model is built
    rows = {n: _mtl_row(n, run, references) for n, run in mtl_runs.items()}
    costs = {
        task: _cost(run_complexity(run['config'], shapes, with_flops, task))
        for task, run in stl_runs.items()
    }
    for name, run in mtl_runs.items():
        rows[name].update(
            _cost(run_complexity(run['config'], shapes, with_flops)))
        for key in ('loss_curves', *section_keys()):
            rows[name][key] = rows[name].pop(key)
    return dict(
        tasks=list(stl),
        main_metrics=main,
        references=references,
        with_flops=with_flops,
        runs=[_stl_row(stl_runs, costs, references), *rows.values()])
