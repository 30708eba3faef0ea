"""The study report: single-task baselines against multi-task runs.

Everything is read from the runs' own work dirs, as MMEngine writes them:

- test metrics: ``<work_dir>/<timestamp>/<timestamp>.json``, the JSON
  object that ``LoggerHook.after_test_epoch`` dumps when ``tools/test.py``
  runs (the latest timestamp wins). STL metrics are keyed as the evaluator
  returns them (``'accuracy/top1'``), MTL metrics ``'<task>/<metric>'``
  (``MultiTaskTestLoop``). Its ``'time'`` is the inference time: the mean
  wall time of one test iteration (one batch, data loading included;
  ``IterTimerHook``) over the epoch window of ``LogProcessor``, i.e. the
  last ``len(test_dataloader)`` iterations; for an MTL run that is the
  length of its first task's test dataloader, over the last batches of
  the tasks run in turn.
- training logs: ``<work_dir>/<timestamp>/vis_data/scalars.json`` of
  ``LocalVisBackend``, one JSON object per line; the training lines are
  those with ``'iter'`` (``LoggerHook.after_train_iter``), with ``'step'``
  (the iteration), ``'time'`` (seconds per iteration, averaged by
  ``LogProcessor`` over its window) and the loss keys. A resumed run's
  earlier sessions supply the steps before the latest one's first.
- the dumped config: the ``*.py`` at the top of the work dir (the newest
  if several), for the model's parameters and FLOPs (built without
  checkpoint) and the train batch size; the world size comes from the
  ``GPU number`` line of the training session's ``<timestamp>.log``.

- task affinity of MTL runs: see :mod:`.affinity_report`.

Delta-m is recomputed from the metrics read, with
:func:`~mtl_pvt.evaluation.delta_m` and the STL runs' metrics as
references; the MTL run's own ``'mtl/delta_m'`` is never used.
"""
import csv
import glob
import json
import math
import os
import os.path as osp
import re
import warnings
from numbers import Real
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from . import affinity_report
from .delta_m import delta_m, relative_changes

DEFAULT_MAIN_METRICS = {
    'cls': dict(metric='accuracy/top1', higher_is_better=True),
    'det': dict(metric='coco/bbox_mAP', higher_is_better=True),
    'seg': dict(metric='mIoU', higher_is_better=True),
}
STL_NAME = 'stl'
STUDY_KEYS = ('stl', 'mtl', 'main_metrics', 'shapes')
_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')
_TIME_KEYS = ('time', 'data_time')


# --------------------------------------------------------------- reading --
def _sessions(work_dir: str) -> List[str]:
    """The ``<timestamp>`` session folders of ``work_dir``, oldest first."""
    return sorted(
        name for name in os.listdir(work_dir)
        if _TIMESTAMP.match(name) and osp.isdir(osp.join(work_dir, name)))


def _check_dir(work_dir: str) -> None:
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir {work_dir!r} does not exist')


def find_test_results(work_dir: str) -> Tuple[str, dict]:
    """The latest test metrics that ``tools/test.py`` dumped in a work dir.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        tuple[str, dict]: The path of ``<timestamp>/<timestamp>.json`` and
        its metrics.

    Raises:
        FileNotFoundError: ``work_dir`` is missing or holds no test results.
    """
    _check_dir(work_dir)
    for session in reversed(_sessions(work_dir)):
        path = osp.join(work_dir, session, session + '.json')
        if osp.isfile(path):
            with open(path) as f:
                return path, json.load(f)
    raise FileNotFoundError(
        f'no test results in work dir {work_dir!r}: looked for '
        f'{osp.join(work_dir, "<timestamp>", "<timestamp>.json")}, which '
        'tools/test.py CONFIG CHECKPOINT --work-dir WORK_DIR writes')


def _read_json_lines(path: str) -> List[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_train_log(work_dir: str) -> Tuple[List[dict], Optional[str]]:
    """The training lines of a work dir's ``scalars.json`` files.

    The latest session with training lines gives its steps; each earlier
    session only the steps before the first of the later ones (a resumed
    run; a run restarted from scratch hides the older one).

    Args:
        work_dir (str): The run's work dir.

    Returns:
        tuple[list[dict], str | None]: The training records by step, and
        the text log of the latest training session (None without one).
    """
    records, text_log = [], None
    for session in reversed(_sessions(work_dir)):
        path = osp.join(work_dir, session, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        lines = [r for r in _read_json_lines(path) if 'iter' in r]
        if not lines:
            continue
        if text_log is None:
            text_log = osp.join(work_dir, session, session + '.log')
        first = records[0]['step'] if records else math.inf
        records = [r for r in lines if r['step'] < first] + records
    return records, text_log


def tested_checkpoint(test_file: str) -> Optional[str]:
    """The ``load_from`` of the config that the test session dumped into
    ``<timestamp>/vis_data/config.py``: the checkpoint tested."""
    config = osp.join(osp.dirname(test_file), 'vis_data', 'config.py')
    if osp.isfile(config):
        with open(config) as f:
            match = re.search(r"^load_from = '(.+)'$", f.read(), re.M)
        if match:
            return match.group(1)
    return None


def find_config(work_dir: str) -> str:
    """The config that the Runner dumped at the top of ``work_dir``."""
    configs = glob.glob(osp.join(work_dir, '*.py'))
    if not configs:
        raise FileNotFoundError(
            f'no dumped config in work dir {work_dir!r}: looked for '
            f'{osp.join(work_dir, "*.py")}, which the Runner writes')
    return max(configs, key=osp.getmtime)


def _world_size(text_log: Optional[str]) -> int:
    """The ``GPU number`` (world size) of the Runner's environment log."""
    if text_log and osp.isfile(text_log):
        with open(text_log) as f:
            for line in f:
                match = re.search(r'GPU number: (\d+)', line)
                if match:
                    return int(match.group(1))
    return 1


# ------------------------------------------------------------ train logs --
def train_times(records: Sequence[dict]) -> dict:
    """Mean training step time and total training time, in seconds.

    Each record's ``time`` (the mean time per iteration of the logger's
    window) counts for the steps since the previous record; validation and
    checkpointing are not included.

    Args:
        records (Sequence[dict]): Training records, as from
            :func:`read_train_log`.

    Returns:
        dict: ``step_time``, ``train_time`` and ``steps``; the times are
        None without records.
    """
    total, steps, previous = 0., 0, 0
    for record in records:
        if 'time' not in record:
            continue
        total += record['time'] * (record['step'] - previous)
        steps += record['step'] - previous
        previous = record['step']
    if not steps:
        return dict(step_time=None, train_time=None, steps=0)
    return dict(step_time=total / steps, train_time=total, steps=steps)


def _task_loss(record: dict, task: Optional[str]) -> Optional[float]:
    """A record's loss: the total ``loss`` of an STL run, else the task's
    ``loss_sum`` or the sum of its keys that contain ``'loss'``."""
    if task is None:
        return record.get('loss')
    if f'{task}.loss_sum' in record:
        return record[f'{task}.loss_sum']
    prefix = task + '.'
    losses = [
        value for key, value in record.items()
        if key.startswith(prefix) and 'loss' in key[len(prefix):]
    ]
    return sum(losses) if losses else None


def loss_curve(records: Sequence[dict],
               task: Optional[str] = None,
               samples_per_step: Optional[int] = None) -> dict:
    """One task's training loss against the step and the samples seen.

    Args:
        records (Sequence[dict]): Training records.
        task (str, optional): The task of an MTL run; None for an STL run,
            whose total ``loss`` is its task's. Defaults to None.
        samples_per_step (int, optional): Samples per step of an STL run
            (batch size x world size); MTL runs log ``<task>.samples_seen``.
            Defaults to None.

    Returns:
        dict: ``step``, ``loss`` and ``samples`` (None where unknown):
        lists of the records that have the task's loss.
    """
    curve = dict(step=[], loss=[], samples=[])
    for record in records:
        loss = _task_loss(record, task)
        if loss is None:
            continue
        if task is None:
            samples = samples_per_step and record['step'] * samples_per_step
        else:
            samples = record.get(f'{task}.samples_seen')
        curve['step'].append(record['step'])
        curve['loss'].append(loss)
        curve['samples'].append(samples)
    if None in curve['samples']:
        curve['samples'] = None
    return curve


def train_budget(records: Sequence[dict],
                 tasks: Sequence[str],
                 samples_per_step: Optional[int] = None) -> Dict[str, dict]:
    """What each task received in training, by the last training record.

    Args:
        records (Sequence[dict]): Training records, as from
            :func:`read_train_log`.
        tasks (Sequence[str]): The run's tasks.
        samples_per_step (int, optional): Samples per iteration of a plain
            single-task run (batch size x world size), which logs no
            ``<task>.samples_seen``; None for a run of a ``MultiTaskModel``
            (``TaskMonitorHook`` logs the counts). Defaults to None.

    Returns:
        dict[str, dict]: Task -> ``iters`` (the last logged iteration),
        ``samples`` (samples seen) and ``updates`` (iterations in which the
        task had samples): for a plain run ``iters x samples_per_step``
        and ``iters``, else the last logged ``<task>.samples_seen`` and
        ``<task>.updates``; None where not logged.
    """
    iters = max((r['step'] for r in records), default=None)

    def last(key):
        values = [r[key] for r in records if key in r]
        return values[-1] if values else None

    budget = {}
    for task in tasks:
        if samples_per_step is not None:
            samples = None if iters is None else iters * samples_per_step
            budget[task] = dict(iters=iters, samples=samples, updates=iters)
        else:
            budget[task] = dict(
                iters=iters,
                samples=last(f'{task}.samples_seen'),
                updates=last(f'{task}.updates'))
    return budget


# ----------------------------------------------------------------- runs --
def load_run(work_dir: str, task: Optional[str] = None) -> dict:
    """Read a run's test metrics, training log and config.

    Args:
        work_dir (str): The run's work dir.
        task (str, optional): The task of an STL run; None for an MTL run,
            whose tasks are the keys of its config's ``model.tasks``. An
            STL run is a single-task model, or a ``MultiTaskModel`` whose
            only task is ``task`` (an STL baseline made from the MTL
            recipe). Defaults to None.

    Returns:
        dict: ``work_dir``, ``tasks``, ``test_file``, ``checkpoint`` (the
        one tested, if known), ``test_metrics``, ``keyed`` (whether the
        metrics are keyed ``'<task>/<metric>'``: a ``MultiTaskModel``
        run), ``test_time``, ``config``, ``train`` (:func:`train_times`),
        ``budget`` (:func:`train_budget`) and ``loss_curves`` (task ->
        :func:`loss_curve`); a ``MultiTaskModel`` run also ``affinity`` (the
        ``TaskAffinityHook`` measurements,
        :func:`~.affinity_report.load_affinity_summary`) and
        ``train_grad_cos`` (the optimiser wrapper's,
        :func:`~.affinity_report.train_grad_cos`), None without them.

    Raises:
        FileNotFoundError: A missing dir, test results or config.
        ValueError: An STL dir holds a multi-task run (of other or more
            tasks than ``task``), or an MTL dir not.
    """
    from mmengine.config import Config
    test_file, metrics = find_test_results(work_dir)
    config = find_config(work_dir)
    cfg = Config.fromfile(config)
    is_mtl = 'tasks' in cfg.model
    one_task = is_mtl and task is not None and list(cfg.model.tasks) == [task]
    if is_mtl == (task is not None) and not one_task:
        kind = 'a multi-task' if is_mtl else 'a single-task'
        if is_mtl:
            kind += f' (tasks {list(cfg.model.tasks)})'
        raise ValueError(f'work dir {work_dir!r} holds {kind} run (config '
                         f'{config}), given as '
                         f'{f"STL of {task!r}" if task else "MTL"}')
    tasks = list(cfg.model.tasks) if is_mtl else [task]
    records, text_log = read_train_log(work_dir)
    if not records:
        warnings.warn(f'no training log in {work_dir!r} (looked for '
                      '<timestamp>/vis_data/scalars.json): no train times '
                      'and loss curves')
    per_step = None
    if not is_mtl and 'batch_size' in cfg.get('train_dataloader', {}):
        per_step = cfg.train_dataloader.batch_size * _world_size(text_log)
    curves = {
        name: loss_curve(records, name if is_mtl else None, per_step)
        for name in tasks
    }
    run = dict(
        work_dir=work_dir,
        tasks=tasks,
        test_file=test_file,
        checkpoint=tested_checkpoint(test_file),
        test_metrics=metrics,
        keyed=is_mtl,
        test_time=metrics.get('time'),
        config=config,
        train=train_times(records),
        budget=train_budget(records, tasks, per_step),
        loss_curves=curves)
    if is_mtl:
        run.update(
            affinity=affinity_report.load_affinity_summary(work_dir),
            train_grad_cos=affinity_report.train_grad_cos(records))
    return run


def parse_main_metrics(tasks: Sequence[str],
                       cfg: Optional[Mapping] = None) -> Dict[str, dict]:
    """Each task's main metric and its direction.

    Args:
        tasks (Sequence[str]): The task names.
        cfg (Mapping, optional): Task -> metric name, or ``dict(metric=...,
            higher_is_better=True)``, over :data:`DEFAULT_MAIN_METRICS`.
            Defaults to None.

    Returns:
        dict[str, dict]: Task -> ``dict(metric, higher_is_better)``.

    Raises:
        ValueError: A task without main metric, or one given for no task.
    """
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(tasks))
    if unknown:
        raise ValueError(f'main_metrics given for {unknown}, which are not '
                         f'tasks of the study {sorted(tasks)}')
    main = {}
    for task in tasks:
        entry = cfg.get(task, DEFAULT_MAIN_METRICS.get(task))
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


# ----------------------------------------------------------------- study --
def parse_shape(value) -> Tuple[int, int]:
    """``S``, ``'S'``, ``'H,W'`` or ``(H, W)`` -> ``(H, W)``."""
    sides = value
    if isinstance(value, str):
        try:
            sides = [int(side) for side in value.split(',')]
        except ValueError:
            sides = None
    elif isinstance(value, int) and not isinstance(value, bool):
        sides = [value]
    if isinstance(sides, (list, tuple)) and len(sides) == 1:
        sides = list(sides) * 2
    if not isinstance(sides, (list, tuple)) or len(sides) != 2 or not all(
            isinstance(s, int) and s > 0 for s in sides):
        raise ValueError(f'an input shape is SIZE, "H,W" or (H, W), not '
                         f'{value!r}')
    return tuple(sides)


def load_study(path: str) -> dict:
    """Read a study file (``.py`` config or ``.json``).

    Examples:
        >>> # study.py
        >>> stl = dict(cls='work_dirs/cls', det='work_dirs/retinanet',
        ...            seg='work_dirs/semfpn')
        >>> mtl = dict(full_share='work_dirs/full_share')
        >>> main_metrics = dict(
        ...     det=dict(metric='coco/bbox_mAP_50', higher_is_better=True))
        >>> shapes = dict(cls=64, det=(128, 128), seg='128,128')

    Args:
        path (str): The file; relative work dirs in it are relative to the
            current directory.

    Returns:
        dict: ``stl``, ``mtl``, ``main_metrics`` and ``shapes`` (task ->
        ``(H, W)``), empty where not given.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: An unknown key, or a value that is no dict.
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'study file {path!r} does not exist')
    cfg = Config.fromfile(path).to_dict()
    unknown = sorted(set(cfg) - set(STUDY_KEYS))
    if unknown:
        raise ValueError(f'study file {path}: unknown key(s) {unknown}; the '
                         f'keys are {list(STUDY_KEYS)}')
    study = {key: cfg.get(key) or {} for key in STUDY_KEYS}
    for key, value in study.items():
        if not isinstance(value, dict):
            raise ValueError(f'study file {path}: {key} must be a dict, but '
                             f'got {value!r}')
    study['shapes'] = {t: parse_shape(s) for t, s in study['shapes'].items()}
    return study


# ----------------------------------------------------------- complexity --
def _input_shapes(model, shapes: Mapping, task: Optional[str]) -> dict:
    """The overrides of ``shapes`` that apply to ``model``: those of its
    tasks and kinds; for an STL run named ``task``, that task's first."""
    from mtl_pvt.analysis import task_kind, task_models
    if task is not None and task in shapes:
        return {'': shapes[task]}
    paths = task_models(model, task)
    names = {''} | set(paths) | {task_kind(m) for m in paths.values()}
    return {key: shape for key, shape in shapes.items() if key in names}


def run_complexity(config: str,
                   shapes: Optional[Mapping] = None,
                   with_flops: bool = True,
                   task: Optional[str] = None) -> dict:
    """:func:`~mtl_pvt.analysis.complexity_report` of a dumped config.

    Args:
        config (str): The config file; its model is built without any
            checkpoint (backbone ``init_cfg=None``).
        shapes (Mapping, optional): ``(H, W)`` overrides keyed by task,
            kind or ``''``. Defaults to None.
        with_flops (bool): Whether to count FLOPs. Defaults to True.
        task (str, optional): The task of a single-task model. Defaults to
            None.

    Returns:
        dict: ``params_total``, ``params_shared`` and ``tasks``: task ->
        ``params``, ``flops``, ``input_shape``.
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS

    from mtl_pvt.analysis import complexity_report
    from mtl_pvt.utils import register_all_modules
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    register_all_modules()
    model = MODELS.build(cfg.model)
    report = complexity_report(model, _input_shapes(model, shapes or {}, task),
                               with_flops, task)
    if task is not None:
        # a single-task model's one path is keyed by its kind
        report['tasks'] = {task: next(iter(report['tasks'].values()))}
    return report


def _cost(report: dict) -> dict:
    """The numbers of :func:`run_complexity` that the report shows."""
    cost = dict(
        params_total=report['params_total'],
        params_shared=report['params_shared'])
    for key, name in (('params', 'params'), ('flops', 'flops'),
                      ('input_shapes', 'input_shape')):
        cost[key] = {t: r[name] for t, r in report['tasks'].items()}
    return cost


# --------------------------------------------------------------- report --
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
        affinity=run['affinity'],
        train_grad_cos=run['train_grad_cos'])


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
        main_metrics (Mapping, optional): See :func:`parse_main_metrics`.
            Defaults to None.
        shapes (Mapping, optional): Input ``(H, W)`` by task, kind or
            ``''``; the standard ones of ``mtl_pvt.analysis`` otherwise.
            Defaults to None.
        with_flops (bool): Whether to count FLOPs. Defaults to True.

    Returns:
        dict: ``tasks``, ``main_metrics``, ``references`` (the ``delta_m``
        config made of the STL metrics) and ``runs``: the STL baseline,
        then the MTL runs (name, metrics, changes in %, delta-m in %,
        params, FLOPs, times in seconds, loss curves, task affinity).

    Raises:
        FileNotFoundError: A missing work dir, test results or config.
        ValueError: No runs, runs on other tasks, a bad main metric or
            input shapes for no task.
        KeyError: A main metric missing from a run's test results.
    """
    if not stl or not mtl:
        raise ValueError('the report needs STL runs and MTL runs, but got '
                         f'stl={dict(stl)!r}, mtl={dict(mtl)!r}')
    main = parse_main_metrics(list(stl), main_metrics)
    shapes = dict(shapes or {})
    unknown = sorted(set(shapes) - {''} - set(stl) - set(DEFAULT_MAIN_METRICS))
    if unknown:
        raise ValueError(f'input shapes given for {unknown}, which are '
                         f'neither tasks {sorted(stl)} nor cls, det, seg')
    stl_runs = {task: load_run(d, task) for task, d in stl.items()}
    mtl_runs = {name: load_run(d) for name, d in mtl.items()}
    for name, run in mtl_runs.items():
        _check_tasks(stl_runs, name, run)
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
        for key in ('loss_curves', 'affinity', 'train_grad_cos'):
            rows[name][key] = rows[name].pop(key)
    return dict(
        tasks=list(stl),
        main_metrics=main,
        references=references,
        with_flops=with_flops,
        runs=[_stl_row(stl_runs, costs, references), *rows.values()])


# ------------------------------------------------------------- formats --
def _number(value: Optional[float], fmt: str, scale: float = 1.) -> str:
    return '-' if value is None else format(value / scale, fmt)


def _duration(seconds: Optional[float]) -> str:
    """``'45 s'``, ``'12 min 05 s'`` or ``'3 h 20 min'``."""
    if seconds is None:
        return '-'
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f'{minutes} min {seconds:02d} s'
    hours, minutes = divmod(minutes, 60)
    return f'{hours} h {minutes:02d} min'


def _metric_cell(row: dict, task: str) -> str:
    value = format(row['metrics'][task], '.4g')
    if row['type'] == 'stl':
        return value
    return f'{value} ({row["changes"][task]:+.2f}%)'


def _columns(report: dict) -> List[str]:
    arrows = {True: '↑', False: '↓'}
    metrics = [
        f'{task} {m["metric"]} {arrows[m["higher_is_better"]]}'
        for task, m in report['main_metrics'].items()
    ]
    flops = [f'GFLOPs {task}' for task in report['tasks']]
    return [
        'Run', *metrics, 'Δm (%)', 'Params (M)', 'Shared (M)', *flops,
        'Train step (s)', 'Train time', 'Inference (s/iter)'
    ]


def _cells(report: dict, row: dict) -> List[str]:
    tasks = report['tasks']
    metrics = [_metric_cell(row, t) for t in tasks]
    flops = [_number(row['flops'][t], '.3f', 1e9) for t in tasks]
    params = [
        _number(row[key], '.3f', 1e6)
        for key in ('params_total', 'params_shared')
    ]
    times = [
        _number(row['step_time'], '.3f'),
        _duration(row['train_time']),
        _number(row['test_time'], '.3f')
    ]
    return [
        row['name'], *metrics, f'{row["delta_m"]:+.2f}', *params, *flops,
        *times
    ]


def _table(header: Sequence[str],
           rows: Sequence[Sequence[str]],
           numbers: bool = False) -> str:
    """A Markdown table, ``|`` in cells escaped; with ``numbers``, all
    columns but the first right-aligned."""

    def line(cells):
        return '| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |'

    align = ['---'] + ['---:' if numbers else '---'] * (len(header) - 1)
    return '\n'.join([
        line(header), '| ' + ' | '.join(align) + ' |', *(line(r) for r in rows)
    ])


_NOTES = (
    '- Metrics: in brackets the relative change against the STL run, '
    'positive = better. Δm: the mean of these changes (Maninis et al. '
    '2019), recomputed from the metrics above.',
    '- Params: the whole model; STL: the single-task models summed. Shared: '
    'parameters of backbone stages that several tasks run.',
    '- Train step: mean seconds per training iteration (`time` of '
    '`<timestamp>/vis_data/scalars.json`: IterTimerHook, data loading '
    'included); train time: all training iterations, validation and '
    'checkpoints excluded. STL: the single-task runs summed (one step of '
    'each).',
    '- Inference: `time` of the test results, mean seconds per test '
    'iteration (one batch, data loading included) over the last '
    '`len(test_dataloader)` iterations; MTL: over the last batches of its '
    'tasks run in turn, as many as its first task has. STL: the '
    'single-task runs summed.',
)


def _flops_note(report: dict) -> str:
    if not report['with_flops']:
        return '- GFLOPs: not counted.'
    shapes = report['runs'][0]['input_shapes']
    sizes = ', '.join(f'{t} {s[0]}x{s[1]}' for t, s in shapes.items())
    return (f'- GFLOPs: one forward of the task path on a 1x3xHxW input '
            f'({sizes}), MMEngine FlopAnalyzer, 1 multiply-add = 1 FLOP.')


_SOURCES = ('Work dir', 'Test results', 'Checkpoint tested')


def _sources(run: dict) -> List[str]:
    """Cells of a run's work dir, test results file and checkpoint."""
    checkpoint = run['checkpoint'] and osp.basename(run['checkpoint'])
    test_file = osp.relpath(run['test_file'], run['work_dir'])
    return [f'`{run["work_dir"]}`', f'`{test_file}`', f'`{checkpoint}`']


def format_markdown(report: dict) -> str:
    """The report as Markdown: which runs and metrics, the table, then
    the task affinity of the runs that measured it.

    Args:
        report (dict): The output of :func:`build_report`.

    Returns:
        str: The Markdown text.
    """
    stl, *mtl = report['runs']
    tasks = [[
        t, f'`{m["metric"]}`', 'higher' if m['higher_is_better'] else 'lower',
        *_sources(stl['runs'][t])
    ] for t, m in report['main_metrics'].items()]
    runs = [[r['name'], *_sources(r)] for r in mtl]
    rows = [_cells(report, r) for r in report['runs']]
    notes = [*_NOTES[:2], _flops_note(report), *_NOTES[2:]]
    sections = [
        '# Multi-task study report',
        'Main metric of each task and its single-task (STL) run; the test '
        'results are the latest `<timestamp>/<timestamp>.json` that '
        'tools/test.py wrote into the work dir, for the checkpoint in its '
        '`<timestamp>/vis_data/config.py` (`load_from`):',
        _table(['Task', 'Main metric', 'Better', *_SOURCES], tasks),
        'Multi-task (MTL) runs:',
        _table(['Run', *_SOURCES], runs),
        _table(_columns(report), rows, numbers=True),
        '\n'.join(notes),
    ]
    affinity = affinity_report.format_affinity(report)
    if affinity:
        sections.append(affinity)
    return '\n\n'.join(sections) + '\n'


def csv_rows(report: dict) -> List[dict]:
    """One flat dict per run, for ``report.csv``."""
    rows = []
    for row in report['runs']:
        flat = dict(run=row['name'], type=row['type'])
        for task, main in report['main_metrics'].items():
            flat[f'{task}/{main["metric"]}'] = row['metrics'][task]
            flat[f'{task}/change_pct'] = row['changes'][task]
        flat['delta_m_pct'] = row['delta_m']
        flat['params_total'] = row['params_total']
        flat['params_shared'] = row['params_shared']
        for task in report['tasks']:
            flat[f'{task}/params'] = row['params'][task]
            flat[f'{task}/flops'] = row['flops'][task]
        for key in ('step_time', 'train_time', 'test_time'):
            flat[f'{key}_s'] = row[key]
        rows.append(flat)
    return rows


def _write_csv(rows: List[dict], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------- plots --
def _figure(width: float, height: float):
    """A figure drawn by Agg, without pyplot's global state."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout='constrained')


def _run_colors(report: dict) -> Dict[str, str]:
    return {row['name']: f'C{i}' for i, row in enumerate(report['runs'])}


def plot_metrics(report: dict, path: str) -> None:
    """Bars of each task's main metric per run, one panel per task."""
    tasks, runs = report['tasks'], report['runs']
    colors = _run_colors(report)
    fig = _figure(3.2 * len(tasks) + 1, 3.6)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    names = [r['name'] for r in runs]
    for ax, task in zip(axes, tasks):
        main = report['main_metrics'][task]
        values = [r['metrics'][task] for r in runs]
        bars = ax.bar(names, values, color=[colors[n] for n in names])
        labels = [format(v, '.4g') for v in values[:1]] + [
            f'{v:.4g}\n{r["changes"][task]:+.1f}%'
            for v, r in zip(values[1:], runs[1:])
        ]
        ax.bar_label(bars, labels, fontsize=7)
        ax.margins(y=0.2)
        better = 'higher' if main['higher_is_better'] else 'lower'
        ax.set_title(
            f'{task}: {main["metric"]} ({better} is better)', fontsize=9)
        ax.tick_params(axis='x', labelrotation=30, labelsize=8)
    fig.suptitle('Main metric per task (test results)')
    fig.savefig(path, dpi=120)


def plot_delta_m(report: dict, path: str) -> None:
    """Delta-m of each run against its total parameters."""
    colors = _run_colors(report)
    fig = _figure(5.5, 4)
    ax = fig.subplots()
    ax.axhline(0, color='grey', linewidth=0.8, linestyle='--')
    for row in report['runs']:
        x = row['params_total'] / 1e6
        ax.scatter(x, row['delta_m'], color=colors[row['name']], zorder=3)
        ax.annotate(
            row['name'], (x, row['delta_m']),
            textcoords='offset points',
            xytext=(5, 5),
            fontsize=8)
    ax.margins(x=0.15, y=0.2)
    ax.set_xlabel('total parameters (M)')
    ax.set_ylabel('Δm (%) vs STL, higher is better')
    ax.set_title('Δm against model size (STL: the single-task models)')
    fig.savefig(path, dpi=120)


def plot_losses(report: dict,
                task: str,
                path: str,
                x: str = 'samples') -> None:
    """One task's training loss per run against steps or samples seen.

    Samples are used when every run logged them (else steps).
    """
    colors = _run_colors(report)
    curves = {r['name']: r['loss_curves'][task] for r in report['runs']}
    if x == 'samples' and any(c['samples'] is None for c in curves.values()):
        x = 'step'
    fig = _figure(6, 4)
    ax = fig.subplots()
    for name, curve in curves.items():
        if curve['loss']:
            ax.plot(curve[x], curve['loss'], label=name, color=colors[name])
    ax.set_xlabel(f'{task} samples seen' if x ==
                  'samples' else 'training step (iteration)')
    ax.set_ylabel(f'{task} training loss')
    ax.set_title(f'{task}: training loss per run')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)


def write_report(report: dict, out_dir: str, loss_x: str = 'samples') -> \
        List[str]:
    """Write ``report.md``, ``report.csv``, ``report.json`` and the plots
    (``affinity_<run>.png`` and ``affinity_curves_<run>.png`` for the runs
    with affinity measurements).

    Args:
        report (dict): The output of :func:`build_report`.
        out_dir (str): The output folder (created if needed).
        loss_x (str): x axis of the loss curves, ``'samples'`` (samples
            seen, when every run logs them) or ``'step'``. Defaults to
            ``'samples'``.

    Returns:
        list[str]: The paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        name: osp.join(out_dir, name)
        for name in ('report.md', 'report.csv', 'report.json', 'metrics.png',
                     'delta_m_vs_params.png')
    }
    with open(paths['report.md'], 'w') as f:
        f.write(format_markdown(report))
    _write_csv(csv_rows(report), paths['report.csv'])
    with open(paths['report.json'], 'w') as f:
        json.dump(report, f, indent=2)
    plot_metrics(report, paths['metrics.png'])
    plot_delta_m(report, paths['delta_m_vs_params.png'])
    for task in report['tasks']:
        paths[task] = osp.join(out_dir, f'loss_{task}.png')
        plot_losses(report, task, paths[task], loss_x)
    return list(paths.values()) + affinity_report.write_affinity_plots(
        report, out_dir)
