"""Fit the parameter schedules of a config to a shorter run.

The configs' schedules name fixed boundaries (a 20-iteration warm-up, then
``PolyLR`` from 20 to the end). A run shorter than that, the user's first
sanity check with ``train_cfg.max_iters=10``, fails in mmengine with ``end
should be larger than begin``. :func:`fit_schedules` rescales the
boundaries instead, so that the schedules that end before the last one
begins take the first half of the run, and says so once::

    max_iters=10 is shorter than the param_scheduler: LinearLR [0, 20) ->
    [0, 5), PolyLR [20, end) -> [5, end)

Only schedulers counted in the unit of the train loop are changed
(``by_epoch=False`` ones for ``max_iters``, ``by_epoch=True`` ones for
``max_epochs``); ends beyond the run are clipped to its end, schedulers
that still cannot start are dropped.
"""
import copy
import logging
from typing import List, Tuple

from mmengine.config import Config

Note = Tuple[int, str]  # (logging level, message)


def _span(scheduler: dict) -> str:
    end = scheduler.get('end')
    return f'[{scheduler.get("begin", 0)}, ' \
        f'{"end" if end is None else end})'


def _run_length(cfg: Config) -> Tuple[int, bool]:
    """``(length, by_epoch)`` of the train loop, or ``(0, False)``."""
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('max_iters') is not None:
        return int(train_cfg['max_iters']), False
    if train_cfg.get('max_epochs') is not None:
        return int(train_cfg['max_epochs']), True
    return 0, False


def fit_schedules(cfg: Config) -> List[Note]:
    """Make ``cfg.param_scheduler`` start within a short run.

    Args:
        cfg (Config): The training config; ``param_scheduler`` is changed
            in place when the run is too short for it.

    Returns:
        list[tuple[int, str]]: ``(logging level, message)`` for the run's
        log; empty when nothing changed.
    """
    total, by_epoch = _run_length(cfg)
    schedulers = cfg.get('param_scheduler')
    if total <= 0 or not schedulers:
        return []
    single = isinstance(schedulers, dict)
    schedulers = [schedulers] if single else list(schedulers)
    ours = [
        s for s in schedulers
        if isinstance(s, dict) and s.get('by_epoch', True) == by_epoch
        and not s.get('convert_to_iter_based')
    ]

    def end_of(s):
        return total if s.get('end') is None else s['end']

    if all(s.get('begin', 0) < end_of(s) and end_of(s) <= total for s in ours):
        return []
    before = {id(s): (s.get('type'), _span(s)) for s in ours}
    last_begin = max(s.get('begin', 0) for s in ours)
    if last_begin and any(
            s.get('begin', 0) >= min(end_of(s), total) for s in ours):
        # what ended before the last begins takes half of the run
        factor = total / (2 * last_begin)

        def scale(value):
            return max(1, round(value * factor)) if value > 0 else 0

        for s in ours:
            if s.get('end') is not None:
                s['end'] = scale(s['end'])
            s['begin'] = scale(s.get('begin', 0))
    for s in ours:
        if s.get('end') is not None and s['end'] > total:
            s['end'] = total  # "until the end" of a longer run
    dropped = {id(s) for s in ours if s.get('begin', 0) >= end_of(s)}
    kept = [s for s in schedulers if id(s) not in dropped]
    changes = [
        f'{before[id(s)][0]} {before[id(s)][1]} -> ' +
        ('dropped' if id(s) in dropped else _span(s)) for s in ours
    ]
    unit = 'max_epochs' if by_epoch else 'max_iters'
    cfg.param_scheduler = copy.deepcopy(kept[0] if single and kept else kept)
    return [(logging.WARNING,
             f'{unit}={total} is shorter than the param_scheduler: ' +
             ', '.join(changes))]
