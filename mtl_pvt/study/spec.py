"""Study files: the arms, seeds and baselines of a study, checked.

A study file is an MMEngine config (``.py``)::

    work_dir = 'work_dirs/demo_study'    # default: work_dirs/<file stem>
    seeds = [0, 1, 2]
    arms = dict(
        full_share=dict(
            config='configs/demo/mtl/pvtv2_b0_full_share_affinity_demo.py'),
        partial_share_s2=dict(
            config='configs/demo/mtl/pvtv2_b0_partial_share_s2_demo.py',
            overrides={'train_dataloader.num_workers': 0}),  # --cfg-options
        no_share=dict(config='configs/demo/mtl/pvtv2_b0_no_share_demo.py'),
        # the tree that full_share's measured affinities suggest, per seed
        suggested=dict(suggest_from='full_share',
                       suggest_args=['--max-branches', '2']))
    stl = dict(matched=True, matched_from='no_share', tasks=['cls', 'det'],
               reference=dict(cls='configs/demo/stl/pvtv2_b0_cls_demo.py'))
    metrics = dict(cls='accuracy/top1', det=['coco/bbox_mAP',
                   'coco/bbox_mAP_50'], seg=['mIoU', 'aAcc'])
    shapes = dict(cls=64, det=128, seg=128)
    vary = []    # recipe keys the arms may differ in besides the sharing

Relative paths are relative to the current directory; names starting with
``_`` are the file's own helpers (``_tiny = {...}`` for overrides shared by
arms) and ignored. :func:`load_study`
checks everything before anything runs and raises naming the file and the
key: a missing config, arms of different tasks, bad seeds, unknown keys,
a ``matched_from`` / ``suggest_from`` that names no arm, reference tasks
that no arm has, and arms whose recipes differ in anything but the sharing
(:func:`~.matched.matched_recipe_diff`) and ``vary``: an error, since
arms that differ only in what is varied are what a study promises.
"""
import copy
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from mmengine.config import Config

from .matched import (check_multi_task, filter_varied, main_metric,
                      matched_recipe_diff, matched_stl_config)

STUDY_KEYS = ('work_dir', 'seeds', 'arms', 'stl', 'metrics', 'shapes', 'vary')
ARM_KEYS = ('config', 'overrides', 'suggest_from', 'suggest_args')
STL_KEYS = ('matched', 'matched_from', 'tasks', 'reference')
REFERENCE_KEYS = ('config', 'overrides')
# run names are folder names; stl_ and ref_ name the baselines
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
_BASELINE_PREFIXES = ('stl_', 'ref_')


class StudyError(ValueError):
    """A study file that cannot run; the message names the file and key."""


@dataclass
class Arm:
    """A multi-task arm: a config, or a tree suggested from another arm.

    Attributes:
        name (str): The arm's run name.
        config (str, optional): The config file (absolute); None for a
            suggested arm.
        overrides (dict): Dotted keys merged into the config.
        suggest_from (str, optional): The arm whose measured task affinity
            gives this arm's tree, seed by seed.
        suggest_args (list[str]): Extra arguments of
            ``tools/analysis_tools/suggest_branching.py``.
    """
    name: str
    config: Optional[str]
    overrides: dict = field(default_factory=dict)
    suggest_from: Optional[str] = None
    suggest_args: List[str] = field(default_factory=list)


@dataclass
class Reference:
    """A reference single-task baseline (a plain STL config) of a task."""
    task: str
    config: str
    overrides: dict = field(default_factory=dict)


@dataclass
class Study:
    """A checked study file (see the module docstring).

    Attributes:
        path (str): The study file.
        work_dir (str): Absolute; runs go to
            ``<work_dir>/<run>/seed_<seed>/``.
        seeds (list[int]): The seeds, in order.
        arms (dict[str, Arm]): The arms, in the file's order.
        tasks (list[str]): The arms' tasks.
        matched (bool): Whether the matched STL runs are part of the study.
        matched_from (str, optional): The arm they are derived from.
        stl_tasks (list[str]): The tasks with a matched STL run (none
            unless ``matched``).
        references (dict[str, Reference]): Task -> its reference baseline.
        metrics (dict): Task -> metric(s) for the report.
        shapes (dict): Task -> ``(H, W)`` FLOPs input size for the report.
        vary (list[str]): Recipe keys the arms may differ in.
    """
    path: str
    work_dir: str
    seeds: List[int]
    arms: Dict[str, Arm]
    tasks: List[str]
    matched: bool = False
    matched_from: Optional[str] = None
    stl_tasks: List[str] = field(default_factory=list)
    references: Dict[str, Reference] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)
    vary: List[str] = field(default_factory=list)
    _configs: Dict[str, Config] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The study file's stem."""
        return osp.splitext(osp.basename(self.path))[0]

    def arm_config(self, name: str) -> Config:
        """The config of a config arm, its overrides merged (a copy)."""
        return copy.deepcopy(self._configs[name])


def load_config(path: str, overrides: Optional[dict] = None) -> Config:
    """``Config.fromfile(path)`` with ``overrides`` (dotted keys) merged."""
    cfg = Config.fromfile(path)
    if overrides:
        cfg.merge_from_dict(overrides)
    return cfg


class _Checker:
    """Raises :class:`StudyError` / ``FileNotFoundError`` naming the study
    file and the key."""

    def __init__(self, path: str):
        self.path = path

    def error(self, key: str, message: str) -> StudyError:
        where = f'{key}: ' if key else ''
        return StudyError(f'study file {self.path}: {where}{message}')

    def keys(self, value, key: str, allowed) -> dict:
        if not isinstance(value, dict):
            raise self.error(key, f'must be a dict, but got {value!r}')
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise self.error(
                key, f'unknown key(s) {unknown}; the keys are '
                f'{list(allowed)}')
        return value

    def file(self, value, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f'must be a config file, but got {value!r}')
        if not osp.isfile(value):
            raise FileNotFoundError(
                f'study file {self.path}: {key}: {value!r} does not exist '
                f'(relative paths are relative to {os.getcwd()})')
        return osp.abspath(value)

    def config(self, path: str, overrides, key: str) -> Config:
        if not isinstance(overrides, dict):
            raise self.error(
                f'{key}.overrides', 'must be a dict of dotted keys, as '
                f'--cfg-options, but got {overrides!r}')
        try:
            return load_config(path, overrides)
        except Exception as e:  # a config or override that does not load
            raise self.error(key, f'{path} does not load: {e}') from e

    def strings(self, value, key: str) -> List[str]:
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, str) for v in value):
            raise self.error(
                key, f'must be a list of strings, but got '
                f'{value!r}')
        return list(value)


def _seeds(check: _Checker, seeds) -> List[int]:
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise check.error(
            'seeds', f'must be a non-empty list of ints, but '
            f'got {seeds!r}')
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int)]
    if bad:
        raise check.error('seeds', f'must be ints, but got {bad}')
    twice = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if twice:
        raise check.error('seeds', f'seed(s) {twice} given more than once')
    return list(seeds)


def _arms(check: _Checker, arms) -> Dict[str, Arm]:
    if not isinstance(arms, dict) or not arms:
        raise check.error(
            'arms', 'must be a non-empty dict of arm name -> '
            f'dict(config=...), but got {arms!r}')
    out = {}
    for name, entry in arms.items():
        key = f'arms.{name}'
        if not isinstance(name, str) or not _NAME.match(name) or \
                name.startswith(_BASELINE_PREFIXES):
            raise check.error(
                key, 'an arm name is a folder name of letters, digits, '
                "'_', '.' and '-', not starting with 'stl_' or 'ref_' (the "
                'baselines)')
        check.keys(entry, key, ARM_KEYS)
        if ('config' in entry) == ('suggest_from' in entry):
            raise check.error(
                key, 'give config (a multi-task config) or '
                'suggest_from (an arm), exactly one')
        if 'suggest_args' in entry and 'suggest_from' not in entry:
            raise check.error(f'{key}.suggest_args', 'needs suggest_from')
        if not isinstance(entry.get('overrides', {}), dict):
            raise check.error(
                f'{key}.overrides', 'must be a dict of dotted keys, as '
                f"--cfg-options, but got {entry['overrides']!r}")
        out[name] = Arm(
            name=name,
            config=check.file(entry['config'], f'{key}.config')
            if 'config' in entry else None,
            overrides=entry.get('overrides') or {},
            suggest_from=entry.get('suggest_from'),
            suggest_args=check.strings(
                entry.get('suggest_args', []), f'{key}.suggest_args'))
    return out


def _has_affinity_hook(cfg: Config) -> bool:
    return any(
        str(h.get('type', '')).split('.')[-1] == 'TaskAffinityHook'
        for h in cfg.get('custom_hooks') or [])


def _check_suggested(check: _Checker, arms: Dict[str, Arm],
                     configs: Dict[str, Config]) -> None:
    for arm in arms.values():
        if arm.suggest_from is None:
            continue
        key = f'arms.{arm.name}.suggest_from'
        source = arm.suggest_from
        if source not in configs:
            kind = 'a suggested arm' if source in arms else 'no arm'
            raise check.error(
                key, f'{source!r} names {kind}; the arms with a config are '
                f'{list(configs)}')
        cfg = configs[source]
        if not _has_affinity_hook(cfg):
            raise check.error(
                key, f"arm {source!r} measures no task affinity: its config "
                "has no dict(type='TaskAffinityHook') in custom_hooks")
        if cfg.model.backbone.get('share_stages') == 0:
            raise check.error(
                key, f'arm {source!r} shares no stage, so its runs measure '
                'no affinity between tasks')


def _check_tasks(check: _Checker, configs: Dict[str, Config]) -> List[str]:
    tasks = {}
    for name, cfg in configs.items():
        try:
            tasks[name] = check_multi_task(cfg)
        except ValueError as e:
            raise check.error(f'arms.{name}.config', str(e)) from e
    first = next(iter(tasks.values()))
    if any(sorted(t) != sorted(first) for t in tasks.values()):
        listing = '; '.join(f'{n}: {t}' for n, t in tasks.items())
        raise check.error(
            'arms', f'the arms have different tasks '
            f'({listing}); a study compares arms of one task '
            'set')
    return first


def _check_recipes(check: _Checker, configs: Dict[str, Config], reference: str,
                   tasks: List[str], vary: List[str]):
    """Every arm's recipe is ``reference``'s but for the sharing."""
    found = []
    for name, cfg in configs.items():
        if name == reference:
            continue
        for task in tasks:
            try:
                keys = matched_recipe_diff(configs[reference], cfg, task)
            except ValueError as e:
                raise check.error(f'arms.{name}', str(e)) from e
            keys = filter_varied(keys, vary)
            if keys:
                found.append(f'{name} vs {reference}, task {task}: {keys}')
    if found:
        raise check.error(
            'arms', 'the arms differ in more than the sharing: ' +
            '; '.join(found) + '. Make the recipes agree, or list the keys '
            'the study varies in vary=[...]')


def _stl(check: _Checker, stl, arms: Dict[str, Arm],
         configs: Dict[str, Config], tasks: List[str]) -> dict:
    stl = check.keys({} if stl is None else stl, 'stl', STL_KEYS)
    matched = stl.get('matched', True)
    if not isinstance(matched, bool):
        raise check.error('stl.matched', f'must be True or False, but got '
                          f'{matched!r}')
    source = stl.get('matched_from', next(iter(configs)))
    if source not in configs:
        kind = 'a suggested arm' if source in arms else 'no arm'
        raise check.error(
            'stl.matched_from', f'{source!r} names {kind}; the arms with a '
            f'config are {list(configs)}')
    stl_tasks = check.strings(stl.get('tasks', tasks), 'stl.tasks')
    unknown = [t for t in stl_tasks if t not in tasks]
    if unknown:
        raise check.error('stl.tasks', f'{unknown} are not tasks of the arms '
                          f'{tasks}')
    if matched:
        for task in stl_tasks:
            try:
                matched_stl_config(configs[source], task)
            except ValueError as e:
                raise check.error('stl.matched_from', str(e)) from e
    references = {}
    for task, entry in (stl.get('reference') or {}).items():
        key = f'stl.reference.{task}'
        if task not in tasks:
            raise check.error(
                key, f'{task!r} is not a task of the arms '
                f'{tasks}')
        if isinstance(entry, str):
            entry = dict(config=entry)
        check.keys(entry, key, REFERENCE_KEYS)
        path = check.file(entry.get('config'), f'{key}.config')
        overrides = entry.get('overrides') or {}
        check.config(path, overrides, key)
        references[task] = Reference(task, path, overrides)
    return dict(
        matched=matched,
        matched_from=source,
        stl_tasks=stl_tasks if matched else [],
        references=references)


def _metrics(check: _Checker, metrics, tasks: List[str],
             source: Config) -> dict:
    if metrics is None:  # the main metrics of the delta-m references
        found = {t: main_metric(source, t) for t in tasks}
        return {
            t: dict(metric=m[0], higher_is_better=m[1])
            for t, m in found.items() if m
        }
    check.keys(metrics, 'metrics', tasks)
    for task, entry in metrics.items():
        entries = entry if isinstance(entry, (list, tuple)) else [entry]
        good = bool(entries) and all(
            isinstance(e, str) or isinstance(e, dict) and 'metric' in e
            and set(e) <= {'metric', 'higher_is_better'} for e in entries)
        if not good:
            raise check.error(
                f'metrics.{task}', 'must be a metric name, dict(metric=..., '
                f'higher_is_better=True) or a list of those, but got '
                f'{entry!r}')
    return metrics


def _shapes(check: _Checker, shapes, tasks: List[str]) -> dict:
    from mtl_pvt.report.inputs import parse_shape
    out = {}
    for task, shape in check.keys(shapes or {}, 'shapes', tasks).items():
        try:
            out[task] = parse_shape(shape)
        except ValueError as e:
            raise check.error(f'shapes.{task}', str(e)) from e
    return out


def load_study(path: str) -> Study:
    """Read and check a study file (see the module docstring).

    Args:
        path (str): The study file (``.py``).

    Returns:
        Study: The checked study; nothing is run or written.

    Raises:
        FileNotFoundError: The study file or a config it names is missing.
        StudyError: Anything else that would not run, naming the key.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'study file {path!r} does not exist')
    check = _Checker(path)
    try:
        raw = Config.fromfile(path).to_dict()
    except Exception as e:  # a syntax error, a bad _base_
        raise StudyError(f'study file {path} does not load: {e}') from e
    # names starting with '_' are the file's own helpers
    raw = {k: v for k, v in raw.items() if not k.startswith('_')}
    check.keys(raw, '', STUDY_KEYS)
    work_dir = raw.get('work_dir') or osp.join(
        'work_dirs',
        osp.splitext(osp.basename(path))[0])
    if not isinstance(work_dir, str):
        raise check.error('work_dir', f'must be a path, but got {work_dir!r}')
    seeds = _seeds(check, raw.get('seeds'))
    arms = _arms(check, raw.get('arms'))
    configs = {
        arm.name: check.config(arm.config, arm.overrides, f'arms.{arm.name}')
        for arm in arms.values() if arm.config is not None
    }
    if not configs:
        raise check.error('arms', 'no arm has a config')
    tasks = _check_tasks(check, configs)
    _check_suggested(check, arms, configs)
    vary = check.strings(raw.get('vary', []), 'vary')
    stl = _stl(check, raw.get('stl'), arms, configs, tasks)
    _check_recipes(check, configs, stl['matched_from'], tasks, vary)
    return Study(
        path=osp.abspath(path),
        work_dir=osp.abspath(work_dir),
        seeds=seeds,
        arms=arms,
        tasks=tasks,
        metrics=_metrics(check, raw.get('metrics'), tasks,
                         configs[stl['matched_from']]),
        shapes=_shapes(check, raw.get('shapes'), tasks),
        vary=vary,
        _configs=configs,
        **stl)
