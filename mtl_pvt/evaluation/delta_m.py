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
"""
import math
from numbers import Real
from typing import Dict

_KEYS = ('metric', 'stl', 'higher_is_better')


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
