"""Delta-m: the multi-task performance against single-task references.

Maninis et al., "Attentive Single-Tasking of Multiple Tasks", CVPR 2019::

    delta_m = 1/T * sum_t (-1)^l_t * (M_t - M_stl,t) / M_stl,t

with ``M_t`` the main metric of task ``t`` in the multi-task model,
``M_stl,t`` that of its single-task model and ``l_t = 1`` when lower is
better. It is given in percent: +1.0 means the tasks are 1% better on
average.

The references are given as in ``val_cfg`` / ``test_cfg``::

    delta_m = dict(
        cls=dict(metric='accuracy/top1', stl=82.0),
        det=dict(metric='coco/bbox_mAP', stl=0.446),
        seg=dict(metric='mIoU', stl=45.2, higher_is_better=True))

and the metrics are keyed ``'<task>/<metric>'``, as ``MultiTaskValLoop``
returns them.

Vandenhende et al., "Multi-Task Learning for Dense Prediction Tasks: A
Survey", TPAMI 2021, average over several metrics ``M_t`` per task
(:func:`multi_metric_delta_m`)::

    delta_m = 1/T * sum_t 1/|M_t| * sum_{m in M_t}
              (-1)^l_m * (M_m - M_stl,m) / |M_stl,m|

with the metrics given by :func:`parse_metric_spec`; with one metric per
task it is the Maninis form.
"""
import math
from numbers import Real
from typing import Dict, List, Mapping, Tuple

from mtl_pvt.structures.task import MTL_PREFIX

_KEYS = ('metric', 'stl', 'higher_is_better')
_SPEC_KEYS = ('metric', 'higher_is_better')

# the key of the multi-task delta-m in the validation and test metrics
DELTA_M_KEY = f'{MTL_PREFIX}/delta_m'


def parse_delta_m(cfg: dict) -> Dict[str, dict]:
    """Check the ``delta_m`` references and fill in the defaults.

    Args:
        cfg (dict): Task name -> ``dict(metric, stl, higher_is_better)``:
            the task's main metric (a key of its evaluator's results,
            without the task prefix), its single-task value, and whether
            higher is better (defaults to True).

    Returns:
        dict[str, dict]: Task name -> dict with the three keys.

    Raises:
        ValueError: An empty config, an unknown or missing key, a metric
            that is not a string, or a ``stl`` value of 0 or not finite.
    """
    if not isinstance(cfg, dict) or not cfg:
        raise ValueError('delta_m must be a non-empty dict of task name -> '
                         f'dict(metric=..., stl=...), but got {cfg!r}')
    return {task: _parse_reference(task, ref) for task, ref in cfg.items()}


def _parse_reference(task: str, ref) -> dict:
    """One task's entry of :func:`parse_delta_m`."""
    where = f'delta_m.{task}'
    if not isinstance(ref, dict) or not {'metric', 'stl'} <= set(ref):
        raise ValueError(f"{where} must be a dict with 'metric' and 'stl', "
                         f'but got {ref!r}')
    unknown = sorted(set(ref) - set(_KEYS))
    if unknown:
        raise ValueError(f'{where} has unknown key(s) {unknown}; the keys '
                         f'are {list(_KEYS)}')
    metric, stl = ref['metric'], ref['stl']
    higher_is_better = ref.get('higher_is_better', True)
    if not isinstance(metric, str) or not metric:
        raise ValueError(f'{where}.metric must be a metric name, but got '
                         f'{metric!r}')
    # bool is a Real too, but no metric value
    if isinstance(stl, bool) or not isinstance(stl, Real) or \
            not math.isfinite(stl) or stl == 0:
        raise ValueError(f'{where}.stl: the single-task {metric!r} must be a '
                         f'finite non-zero number (it divides), but got '
                         f'{stl!r}')
    if not isinstance(higher_is_better, bool):
        raise ValueError(f'{where}.higher_is_better must be True or False, '
                         f'but got {higher_is_better!r}')
    return dict(
        metric=metric, stl=float(stl), higher_is_better=higher_is_better)


def relative_changes(metrics: dict, references: dict) -> Dict[str, float]:
    """Each task's signed relative change against its reference, in %.

    Positive is better, whatever the metric's direction.

    Args:
        metrics (dict): Metric values keyed ``'<task>/<metric>'``.
        references (dict): The ``delta_m`` config (see
            :func:`parse_delta_m`).

    Returns:
        dict[str, float]: Task name -> ``100 * (-1)^l * (M - M_stl) /
        |M_stl|``.

    Raises:
        KeyError: A task's metric is not in ``metrics``; the message lists
            the metrics of that task that are.
    """
    changes = dict()
    for task, ref in parse_delta_m(references).items():
        key = '/'.join((task, ref['metric']))
        if key not in metrics:
            raise KeyError(f"delta_m.{task}.metric: {ref['metric']!r} is not "
                           f'a metric of task {task!r}; its metrics are '
                           f'{_task_metrics(metrics, task)}')
        sign = 1. if ref['higher_is_better'] else -1.
        # |M_stl| keeps the sign meaning "better" for negative references.
        change = (float(metrics[key]) - ref['stl']) / abs(ref['stl'])
        changes[task] = 100. * sign * change
    return changes


def delta_m(metrics: dict, references: dict) -> float:
    """Mean relative change of the tasks' main metrics, in percent.

    Args:
        metrics (dict): Metric values keyed ``'<task>/<metric>'``, e.g.
            ``{'cls/accuracy/top1': 80.4, 'seg/mIoU': 46.1}``.
        references (dict): The ``delta_m`` config (see
            :func:`parse_delta_m`).

    Returns:
        float: Delta-m in percent; positive when the tasks are better than
        their single-task references on average.

    Examples:
        >>> delta_m({'cls/accuracy/top1': 78.0, 'seg/mIoU': 46.0},
        ...         dict(cls=dict(metric='accuracy/top1', stl=80.0),
        ...              seg=dict(metric='mIoU', stl=40.0)))  # -2.5, +15
        6.25
    """
    changes = relative_changes(metrics, references)
    return sum(changes.values()) / len(changes)


def _task_metrics(metrics: dict, task: str) -> list:
    """The metric names of ``task`` in ``metrics``, without the prefix."""
    prefix = task + '/'
    return sorted(k[len(prefix):] for k in metrics if k.startswith(prefix))


# ------------------------------------------------ several metrics per task --
def parse_metric_spec(spec: Mapping) -> Dict[str, List[dict]]:
    """Check the metrics of each task and fill in their directions.

    Args:
        spec (Mapping): Task name -> a metric name (higher is better),
            ``dict(metric=..., higher_is_better=...)`` or a list of those;
            e.g. ``dict(cls='accuracy/top1', det=['coco/bbox_mAP',
            dict(metric='miss_rate', higher_is_better=False)])``. The first
            metric of a task is its main metric.

    Returns:
        dict[str, list[dict]]: Task name -> its metrics, each
        ``dict(metric, higher_is_better)``, in the order given.

    Raises:
        ValueError: An empty spec or task, an unknown key, a metric that is
            not a name, a direction that is not a bool, or a metric given
            twice for a task.
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError('the metric spec must be a non-empty dict of task '
                         'name -> metric name, dict(metric=..., '
                         f'higher_is_better=...) or a list of those, but got '
                         f'{spec!r}')
    return {task: _parse_task_metrics(task, v) for task, v in spec.items()}


def _parse_task_metrics(task: str, entries) -> List[dict]:
    """One task's entry of :func:`parse_metric_spec`."""
    if not isinstance(entries, (list, tuple)):
        entries = [entries]
    if not entries:
        raise ValueError(f'metrics.{task}: no metric (an empty list)')
    metrics = []
    for entry in entries:
        if isinstance(entry, str):
            entry = dict(metric=entry)
        if not isinstance(entry, Mapping) or 'metric' not in entry or \
                set(entry) - set(_SPEC_KEYS):
            raise ValueError(f'metrics.{task}: each metric is a name or '
                             f'dict(metric=..., higher_is_better=True), but '
                             f'got {entry!r}')
        metric = entry['metric']
        higher_is_better = entry.get('higher_is_better', True)
        if not isinstance(metric, str) or not metric:
            raise ValueError(f'metrics.{task}: a metric must be a name, but '
                             f'got {metric!r}')
        if not isinstance(higher_is_better, bool):
            raise ValueError(f'metrics.{task}.{metric}: higher_is_better '
                             f'must be True or False, but got '
                             f'{higher_is_better!r}')
        if metric in [m['metric'] for m in metrics]:
            raise ValueError(f'metrics.{task}: {metric!r} is given twice')
        metrics.append(dict(metric=metric, higher_is_better=higher_is_better))
    return metrics


def _metric_value(metrics: Mapping, task: str, metric: str,
                  which: str) -> float:
    """``metrics['<task>/<metric>']`` as a finite float."""
    key = '/'.join((task, metric))
    if key not in metrics:
        raise KeyError(f'task {task!r}: metric {metric!r} ({key!r}) is not '
                       f'among the {which} metrics; task {task!r} has '
                       f'{_task_metrics(metrics, task)} there')
    return finite_number(metrics[key], f'task {task!r}: the {which} '
                         f'{metric!r}')


def finite_number(value, what: str) -> float:
    """``value`` as a float if it is a finite number (not a bool).

    Raises:
        ValueError: ``'<what> must be a finite number, but got <value>'``.
    """
    if isinstance(value, bool) or not isinstance(value, Real) or \
            not math.isfinite(value):
        raise ValueError(f'{what} must be a finite number, but got {value!r}')
    return float(value)


def multi_metric_delta_m(metrics: Mapping, stl_metrics: Mapping,
                         spec: Mapping) -> Tuple[float, Dict[str, float]]:
    """Delta-m over several metrics per task (Vandenhende et al.), in %.

    Each metric's signed relative change ``100 * (-1)^l_m * (M_m -
    M_stl,m) / |M_stl,m|`` (positive is better) is averaged within its
    task, then the tasks are averaged: every task weighs the same, however
    many metrics it has.

    Args:
        metrics (Mapping): The multi-task metrics, keyed
            ``'<task>/<metric>'``.
        stl_metrics (Mapping): The single-task metrics, keyed the same
            way.
        spec (Mapping): The tasks and their metrics, see
            :func:`parse_metric_spec`.

    Returns:
        tuple[float, dict[str, float]]: Delta-m in percent, and task name
        -> the mean change of its metrics, in percent.

    Raises:
        KeyError: A metric missing from ``metrics`` or ``stl_metrics``; the
            message names the task and metric.
        ValueError: A bad spec, a value that is not a finite number, or a
            single-task value of 0 (it divides).

    Examples:
        >>> dm, changes = multi_metric_delta_m(
        ...     {'det/mAP': 0.44, 'det/miss': 0.45, 'seg/mIoU': 38.},
        ...     {'det/mAP': 0.40, 'det/miss': 0.50, 'seg/mIoU': 40.},
        ...     dict(det=['mAP', dict(metric='miss',
        ...                          higher_is_better=False)],
        ...          seg='mIoU'))  # det (+10 +10) / 2, seg -5
        >>> round(dm, 9), {t: round(c, 9) for t, c in changes.items()}
        (2.5, {'det': 10.0, 'seg': -5.0})
    """
    changes = {}
    for task, task_metrics in parse_metric_spec(spec).items():
        task_changes = []
        for m in task_metrics:
            value = _metric_value(metrics, task, m['metric'], 'multi-task')
            stl = _metric_value(stl_metrics, task, m['metric'], 'single-task')
            if stl == 0:
                raise ValueError(f'task {task!r}: the single-task '
                                 f"{m['metric']!r} is 0, which divides")
            sign = 1. if m['higher_is_better'] else -1.
            task_changes.append(100. * sign * (value - stl) / abs(stl))
        changes[task] = math.fsum(task_changes) / len(task_changes)
    return math.fsum(changes.values()) / len(changes), changes
