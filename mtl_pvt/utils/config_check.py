"""Pre-flight checks of a config, run by the tools before the Runner.

The Runner creates the work dir, logs and visualizer files before it builds
datasets and models, and a wrong data path or a mistyped ``type`` then
fails deep inside a library. :func:`check_config` finds both first and
names the config key, e.g.::

    FileNotFoundError: train_dataloader.dataset.ann_file:
    data/coco/annotations/instances_train2017.json does not exist
    UnregisteredTypeError: model.type: 'RetinaNett' is not registered in
    scope 'mmdet' (registry 'model')
    ValueError: task names differ: model.tasks has ['cls', 'det', 'seg']
    but val_evaluator has ['cls', 'det']

Types are resolved the way MMEngine builds them: a ``scope.Name`` prefix
wins, else the nearest ``_scope_`` of the config or its parents, else the
config's ``default_scope``.
"""
import os.path as osp
from importlib import import_module
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.registry import (DATASETS, EVALUATOR, METRICS, MODELS,
                               TRANSFORMS, Registry)

# Keys of a model config whose values are not modules (or are built by
# other registries: test_cfg.nms, init_cfg's Pretrained ...).
_NON_MODULE_KEYS = ('init_cfg', 'train_cfg', 'test_cfg')

STAGES = ('train', 'val', 'test')

# Keys of one dataloader, dataset, metric or evaluator config, which a dict
# of configs keyed by task name does not have.
_SINGLE_CONFIG_KEYS = ('type', 'dataset', 'metrics')


class UnregisteredTypeError(KeyError):
    """A config ``type`` that is not registered in its registry."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one reads as a sentence.
        return str(self.args[0])


def _registry_in_scope(registry: Registry, scope: Optional[str]) -> Registry:
    """The node of ``registry``'s tree that builds in ``scope``."""
    if scope is None:
        return registry
    try:
        import_module(f'{scope}.registry')
    except ImportError:
        pass
    node = registry._get_root_registry()._search_child(scope)
    # Not ``or``: a Registry with nothing imported yet has len 0.
    return registry if node is None else node


def get_type(registry: Registry, cfg: dict, scope: Optional[str]):
    """The class that ``cfg['type']`` names, as MMEngine would build it.

    Args:
        registry (Registry): A root registry of MMEngine, e.g. ``MODELS``.
        cfg (dict): A config with a ``type``.
        scope (str, optional): The scope in effect for ``cfg`` (its
            parents' ``_scope_`` or the default scope).

    Returns:
        type or None: The registered class, or None if there is none.
    """
    obj_type = cfg['type']
    if not isinstance(obj_type, str):
        return obj_type
    node = _registry_in_scope(registry, cfg.get('_scope_', scope))
    try:
        return node.get(obj_type)
    except Exception:  # Registry.get raises for some unknown names.
        return None


def check_type(registry: Registry, cfg: dict, key: str,
               scope: Optional[str]) -> None:
    """Raise :class:`UnregisteredTypeError` if ``cfg['type']`` is unknown.

    Args:
        registry (Registry): A root registry of MMEngine.
        cfg (dict): A config with a ``type``.
        key (str): Where ``cfg`` is in the config, for the message.
        scope (str, optional): The scope in effect for ``cfg``.
    """
    if get_type(registry, cfg, scope) is not None:
        return
    type_scope, name = Registry.split_scope_key(cfg['type'])
    type_scope = type_scope or cfg.get('_scope_', scope) or registry.scope
    raise UnregisteredTypeError(
        f'{key}.type: {name!r} is not registered in scope {type_scope!r} '
        f'(registry {registry.name!r})')


def _typed(cfg, key: str) -> Iterator[Tuple[str, dict]]:
    """Configs with a ``type`` in ``cfg``: itself, a list or a dict of them.
    """
    if isinstance(cfg, dict) and 'type' in cfg:
        yield key, cfg
    elif isinstance(cfg, (list, tuple)):
        for i, item in enumerate(cfg):
            yield from _typed(item, f'{key}[{i}]')
    elif isinstance(cfg, dict):
        for name, item in cfg.items():
            if isinstance(item, dict) and 'type' in item:
                yield f'{key}.{name}', item


def _check_model(cfg: Config, scope: Optional[str]) -> None:
    """Check the model's type and those of its direct sub-modules."""
    model = cfg.get('model')
    if not isinstance(model, dict) or 'type' not in model:
        return
    check_type(MODELS, model, 'model', scope)
    # Deeper levels hold configs of other registries (anchor generators,
    # samplers ...), which only the model itself knows how to build.
    scope = model.get('_scope_', scope)
    for name, child in model.items():
        if name not in _NON_MODULE_KEYS:
            for key, sub in _typed(child, f'model.{name}'):
                check_type(MODELS, sub, key, scope)


def iter_datasets(cfg, key: str,
                  scope: Optional[str]) -> Iterator[Tuple[str, dict, str]]:
    """Yield every dataset config under ``cfg``, wrappers included.

    Walks ``dataset`` (RepeatDataset, ClassBalancedDataset ...),
    ``datasets`` (ConcatDataset) and dicts or lists of datasets.

    Args:
        cfg (dict | list): A dataset config, or a dict or list of them.
        key (str): Where ``cfg`` is in the config.
        scope (str, optional): The scope in effect for ``cfg``.

    Yields:
        tuple: ``(key, dataset config, scope in effect)``.
    """
    if isinstance(cfg, (list, tuple)):
        for i, item in enumerate(cfg):
            yield from iter_datasets(item, f'{key}[{i}]', scope)
    elif isinstance(cfg, dict) and 'type' not in cfg:
        for name, item in cfg.items():
            yield from iter_datasets(item, f'{key}.{name}', scope)
    elif isinstance(cfg, dict):
        scope = cfg.get('_scope_', scope)
        yield key, cfg, scope
        for name in ('dataset', 'datasets'):
            if name in cfg:
                yield from iter_datasets(cfg[name], f'{key}.{name}', scope)


def _iter_transforms(pipeline, key: str,
                     scope: Optional[str]) -> Iterator[Tuple[str, dict, str]]:
    """Transforms of a pipeline with their scope, nested ``transforms``
    (RandomChoice, TestTimeAug ...) included."""
    for i, item in enumerate(pipeline or []):
        if isinstance(item, (list, tuple)):  # e.g. TestTimeAug's lists
            yield from _iter_transforms(item, f'{key}[{i}]', scope)
        elif isinstance(item, dict) and 'type' in item:
            yield f'{key}[{i}]', item, scope
            # Nested transforms are built inside their parent's scope.
            yield from _iter_transforms(
                item.get('transforms'), f'{key}[{i}].transforms',
                item.get('_scope_', scope))


def _check_dataset_types(dataset: dict, key: str, scope: Optional[str]):
    """Check a dataset's type and its pipeline's types."""
    check_type(DATASETS, dataset, key, scope)
    for name, transform, transform_scope in _iter_transforms(
            dataset.get('pipeline'), f'{key}.pipeline', scope):
        check_type(TRANSFORMS, transform, name, transform_scope)


def _iter_metrics(evaluator, key: str,
                  scope: Optional[str]) -> Iterator[Tuple[str, dict, str]]:
    """Yield the metric configs of an evaluator (metrics, a list of them,
    a dict with ``metrics``, or a dict of those by task) with their scope;
    an evaluator's own type is checked on the way."""
    if is_task_dict(evaluator):
        for task, item in evaluator.items():
            yield from _iter_metrics(item, f'{key}.{task}', scope)
        return
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        check_type(EVALUATOR, {'type': 'Evaluator', **evaluator}, key, scope)
        scope = evaluator.get('_scope_', scope)
        evaluator, key = evaluator['metrics'], f'{key}.metrics'
    for name, metric in _typed(evaluator, key):
        yield name, metric, scope


def is_local_path(path) -> bool:
    """Whether ``path`` is a non-empty local path (not s3://, http:// ...)."""
    return isinstance(path, str) and bool(path) and '://' not in path


def require_path(path: str, key: str) -> None:
    """Raise FileNotFoundError naming ``key`` if local ``path`` is missing.

    Args:
        path (str): The resolved path.
        key (str): The config key it comes from.
    """
    if is_local_path(path) and not osp.exists(path):
        raise FileNotFoundError(f'{key}: {path} does not exist')


def _join(data_root, path: str) -> str:
    """Join like ``BaseDataset``: relative paths are under ``data_root``."""
    if data_root and not osp.isabs(path) and '://' not in path:
        return osp.join(data_root, path)
    return path


def _check_dataset_paths(dataset: dict, key: str) -> None:
    """Check ``data_root``, ``ann_file`` and ``data_prefix`` of a dataset."""
    data_root = dataset.get('data_root')
    backend = (dataset.get('backend_args') or {}).get('backend', 'local')
    if backend != 'local' or '://' in str(data_root):
        return  # remote data is not checked
    require_path(data_root, f'{key}.data_root')
    ann_file = dataset.get('ann_file')
    if is_local_path(ann_file):
        require_path(_join(data_root, ann_file), f'{key}.ann_file')
    prefix = dataset.get('data_prefix')
    prefixes = prefix.items() if isinstance(prefix, dict) else [(None, prefix)]
    for name, path in prefixes:
        if is_local_path(path):
            suffix = f'.{name}' if name else ''
            require_path(_join(data_root, path), f'{key}.data_prefix{suffix}')


def is_task_dict(cfg) -> bool:
    """Whether ``cfg`` is a dict of configs keyed by task name, e.g.
    ``val_dataloader=dict(cls=dict(dataset=...), det=dict(dataset=...))``,
    rather than one dataloader, dataset, metric or evaluator config."""
    return isinstance(cfg, dict) and bool(cfg) and \
        not set(_SINGLE_CONFIG_KEYS) & set(cfg) and \
        not any(v is None or isinstance(v, (str, int, float))
                for v in cfg.values())


def check_task_names(names: Dict[str, Optional[Iterable[str]]]) -> None:
    """Raise if the places of a config name different tasks.

    Args:
        names (dict): Place (for the message) -> its task names, or None
            where the place does not name tasks.

    Raises:
        ValueError: e.g. ``task names differ: model.tasks has ['cls', 'det',
            'seg'] but val_evaluator has ['cls', 'det']``.
    """
    given = [(place, sorted(tasks)) for place, tasks in names.items()
             if tasks is not None]
    for place, tasks in given[1:]:
        if tasks != given[0][1]:
            raise ValueError(f'task names differ: {given[0][0]} has '
                             f'{given[0][1]} but {place} has {tasks}')


def _dict_keys(cfg, *path: str) -> Optional[list]:
    """Keys of the dict at ``cfg[path[0]][path[1]]...``, else None."""
    for name in path:
        cfg = cfg.get(name) if isinstance(cfg, (dict, Config)) else None
    return list(cfg) if isinstance(cfg, dict) else None


def task_names(cfg: Config, stages: Sequence[str] = STAGES) -> dict:
    """The task names of each place of a multi-task config.

    The places are the model's ``tasks``, the train dataset's
    ``datasets`` and batch sampler's ``batch_sizes`` when they are dicts
    (``MultiTaskDataset``, ``MultiTaskBatchSampler``), the dicts of tasks
    of the val/test dataloaders and evaluators, and ``<stage>_cfg.delta_m``.

    Returns:
        dict: Place -> list of task names, for :func:`check_task_names`.
    """
    names = {'model.tasks': _dict_keys(cfg, 'model', 'tasks')}
    if 'train' in stages:
        loader = 'train_dataloader'
        names[f'{loader}.dataset.datasets'] = _dict_keys(
            cfg, loader, 'dataset', 'datasets')
        names[f'{loader}.batch_sampler.batch_sizes'] = _dict_keys(
            cfg, loader, 'batch_sampler', 'batch_sizes')
    for stage in (s for s in stages if s != 'train'):
        for key in (f'{stage}_dataloader', f'{stage}_evaluator'):
            names[key] = list(cfg[key]) if is_task_dict(cfg.get(key)) else None
        names[f'{stage}_cfg.delta_m'] = _dict_keys(cfg, f'{stage}_cfg',
                                                   'delta_m')
    return names


def _check_task_loops(cfg: Config, stages: Sequence[str]) -> None:
    """A dict of task dataloaders needs a loop that takes one (mmengine's
    ValLoop would fail with ``KeyError: 'dataset'``)."""
    for stage in (s for s in stages if s != 'train'):
        loader = cfg.get(f'{stage}_dataloader')
        loop_cfg = cfg.get(f'{stage}_cfg') or {}
        if is_task_dict(loader) and 'type' not in loop_cfg:
            loop = f'MultiTask{stage.capitalize()}Loop'
            raise ValueError(
                f'{stage}_dataloader is a dict of tasks {list(loader)}; it '
                f"needs {stage}_cfg=dict(type='{loop}')")


def _stage_datasets(cfg: Config, stage: str, scope: Optional[str]):
    """The datasets of ``<stage>_dataloader``, one dataloader or a dict of
    them by task."""
    key = f'{stage}_dataloader'
    loader = cfg.get(key)
    if stage != 'train' and is_task_dict(loader):
        loaders = loader.items()
    else:
        loaders = [(None, loader)]
    for task, item in loaders:
        where = key if task is None else f'{key}.{task}'
        if isinstance(item, dict):
            yield from iter_datasets(
                item.get('dataset'), f'{where}.dataset', scope)


def check_config(cfg: Config, stages: Sequence[str] = STAGES) -> None:
    """Check types, task names and local paths of a config before anything
    is built.

    Checks the model, the ``<stage>_dataloader`` datasets (wrappers and
    nested datasets included) with their pipelines and data paths, the
    ``<stage>_evaluator`` and ``load_from``. Stages without a dataloader are
    skipped. The val and test dataloaders and evaluators may be dicts by
    task name (``MultiTaskValLoop``); the task names must then agree
    between the model, the data and the evaluation (:func:`task_names`).

    Args:
        cfg (Config): The full config.
        stages (Sequence[str]): Stages whose dataloaders and evaluators to
            check. Defaults to ('train', 'val', 'test').

    Raises:
        UnregisteredTypeError: A ``type`` does not resolve in its registry.
        ValueError: Two places name different tasks, or dataloaders by task
            lack a loop type.
        FileNotFoundError: A local data path, a metric's ``ann_file`` or
            ``load_from`` is missing.
    """
    scope = cfg.get('default_scope')
    datasets, metrics = [], []
    _check_model(cfg, scope)
    for stage in stages:
        if not isinstance(cfg.get(f'{stage}_dataloader'), dict):
            continue
        datasets += _stage_datasets(cfg, stage, scope)
        if stage != 'train':
            key = f'{stage}_evaluator'
            metrics += _iter_metrics(cfg.get(key), key, scope)
    for key, dataset, dataset_scope in datasets:
        _check_dataset_types(dataset, key, dataset_scope)
    for key, metric, metric_scope in metrics:
        check_type(METRICS, metric, key, metric_scope)
    check_task_names(task_names(cfg, stages))
    _check_task_loops(cfg, stages)
    # Paths last: a typo is reported even where the data is not there yet.
    for key, dataset, _ in datasets:
        _check_dataset_paths(dataset, key)
    for key, metric, _ in metrics:
        # e.g. CocoMetric's ground truth
        if is_local_path(metric.get('ann_file')):
            require_path(metric['ann_file'], f'{key}.ann_file')
    if is_local_path(cfg.get('load_from')):
        require_path(cfg.load_from, 'load_from')
