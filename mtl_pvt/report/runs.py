"""Reading a run: what MMEngine leaves in a work dir, and its model.

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
  if several), for the tasks' kinds, the model's parameters and FLOPs
  (built without checkpoint) and the train batch size; the world size
  comes from the ``GPU number`` line of the training session's
  ``<timestamp>.log``.

- task affinity of MTL runs: see :mod:`.affinity`.
"""
import glob
import json
import math
import os.path as osp
import re
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from mtl_pvt.utils.work_dirs import sessions
from .section import load_sections


# --------------------------------------------------------------- reading --
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
    for session in reversed(sessions(work_dir)):
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
    for session in reversed(sessions(work_dir)):
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
def config_kinds(cfg, tasks: Sequence[str]) -> Dict[str, Optional[str]]:
    """Task -> kind name (None: of no known kind) of a config's model:
    those of a ``MultiTaskModel``'s tasks
    (:func:`~mtl_pvt.tasks.config_task_kinds`), or for the one task of a
    single-task model, that model's kind.

    Args:
        cfg (Config): The run's config.
        tasks (Sequence[str]): The run's tasks (one for a single-task
            model).
    """
    from mtl_pvt.tasks import config_task_kinds
    from mtl_pvt.utils import register_all_modules
    register_all_modules(init_default_scope=False)  # to find the classes
    found = config_task_kinds(cfg.model, cfg.get('default_scope'))
    if 'tasks' not in cfg.model:
        found = {tasks[0]: next(iter(found.values()), None)}
    return {t: None if found.get(t) is None else found[t].name for t in tasks}


def load_run(work_dir: str,
             task: Optional[str] = None,
             with_sections: bool = True) -> dict:
    """Read a run's test metrics, training log and config.

    Args:
        work_dir (str): The run's work dir.
        task (str, optional): The task of an STL run; None for an MTL run,
            whose tasks are the keys of its config's ``model.tasks``. An
            STL run is a single-task model, or a ``MultiTaskModel`` whose
            only task is ``task`` (an STL baseline made from the MTL
            recipe). Defaults to None.
        with_sections (bool): Whether to read what the report's sections
            read of an MTL run (:mod:`.section`: the task affinity and
            training gradient cosines; the study report over seeds shows
            none). Defaults to True.

    Returns:
        dict: ``work_dir``, ``tasks``, ``kinds`` (task -> kind name or
        None, :func:`config_kinds`), ``test_file``, ``checkpoint`` (the
        one tested, if known), ``test_metrics``, ``keyed`` (whether the
        metrics are keyed ``'<task>/<metric>'``: a ``MultiTaskModel``
        run), ``test_time``, ``config``, ``train`` (:func:`train_times`),
        ``budget`` (:func:`train_budget`) and ``loss_curves`` (task ->
        :func:`loss_curve`); a ``MultiTaskModel`` run also the keys of
        every report section (:func:`~.section.load_sections`: the
        ``affinity`` that ``TaskAffinityHook`` measured and the optimiser
        wrapper's ``train_grad_cos``, None without them), unless not
        ``with_sections``.

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
        kinds=config_kinds(cfg, tasks),
        test_file=test_file,
        checkpoint=tested_checkpoint(test_file),
        test_metrics=metrics,
        keyed=is_mtl,
        test_time=metrics.get('time'),
        config=config,
        train=train_times(records),
        budget=train_budget(records, tasks, per_step),
        loss_curves=curves)
    if is_mtl and with_sections:
        run.update(load_sections(work_dir, records))
    return run


# ----------------------------------------------------------- complexity --
def _input_shapes(model, shapes: Mapping, task: Optional[str]) -> dict:
    """The overrides of ``shapes`` that apply to ``model``: those of its
    tasks and kinds; for an STL run named ``task``, that task's first."""
    from mtl_pvt.analysis import task_models
    from mtl_pvt.tasks import model_task_kinds
    if task is not None and task in shapes:
        return {'': shapes[task]}
    paths = task_models(model, task)
    kinds = {k.name for k in model_task_kinds(model).values() if k}
    names = {''} | set(paths) | kinds
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
    from mtl_pvt.analysis import complexity_report
    from mtl_pvt.utils.builder import build_model_from_config
    model = build_model_from_config(config)
    report = complexity_report(model, _input_shapes(model, shapes or {}, task),
                               with_flops, task)
    if task is not None:
        # a single-task model's one path is keyed by its kind
        report['tasks'] = {task: next(iter(report['tasks'].values()))}
    return report
