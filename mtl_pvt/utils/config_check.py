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
    ValueError: model.task_kinds.places: 'det' contradicts the class of
    model.tasks.places (mmpretrain.ImageClassifier, a 'cls' task model)

Types are resolved the way MMEngine builds them: a ``scope.Name`` prefix
wins, else the nearest ``_scope_`` of the config or its parents, else the
config's ``default_scope``.
"""
from importlib import import_module
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.registry import (DATA_SAMPLERS, DATASETS, EVALUATOR, HOOKS,
                               LOG_PROCESSORS, LOOPS, METRICS, MODEL_WRAPPERS,
                               MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                               OPTIM_WRAPPERS, OPTIMIZERS, PARAM_SCHEDULERS,
                               TASK_UTILS, TRANSFORMS, VISBACKENDS,
                               VISUALIZERS, WEIGHT_INITIALIZERS, Registry)

from mtl_pvt.registry import get_type
from mtl_pvt.structures import check_task_name, is_task_dict
from mtl_pvt.utils.data_paths import (check_dataset_paths, is_local_path,
                                      require_path)

# Keys of a model config whose values are not modules (or are built by
# other registries: test_cfg.nms, init_cfg's Pretrained ...).
_NON_MODULE_KEYS = ('init_cfg', 'train_cfg', 'test_cfg')

STAGES = ('train', 'val', 'test')


class UnregisteredTypeError(KeyError):
    """A config ``type`` that is not registered in its registry."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one reads as a sentence.
        return str(self.args[0])


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


def _library_registries(scope: Optional[str]) -> list:
    """The registries that the ``{scope}.registry`` module defines."""
    try:
        module = import_module(f'{scope}.registry')
    except ImportError:
        return []
    return [v for v in vars(module).values() if isinstance(v, Registry)]


def _resolves_somewhere(cfg: dict, scope: Optional[str]) -> bool:
    """Whether ``cfg['type']`` names anything that a model may build from
    it: a module of any registry in its scope, or an mmcv op looked up by
    name (``roi_layer=dict(type='RoIAlign')``, ``nms=dict(type='nms')``).
    """
    scope = cfg.get('_scope_', scope)
    type_scope, name = Registry.split_scope_key(cfg['type'])
    for registry in (MODELS, TASK_UTILS, WEIGHT_INITIALIZERS):
        if get_type(registry, cfg, scope) is not None:
            return True
    for registry in _library_registries(type_scope or scope):
        try:
            if registry.get(name) is not None:
                return True
        except Exception:
            pass
    try:
        import mmcv.ops
    except ImportError:
        return False
    return hasattr(mmcv.ops, name)


def _iter_typed_tree(cfg, key: str,
                     scope: Optional[str]) -> Iterator[Tuple[str, dict, str]]:
    """Every config with a str ``type`` under ``cfg`` (dicts and lists, at
    any depth), with its key and the scope in effect."""
    if isinstance(cfg, (list, tuple)):
        for i, item in enumerate(cfg):
            yield from _iter_typed_tree(item, f'{key}[{i}]', scope)
    elif isinstance(cfg, dict):
        if isinstance(cfg.get('type'), str):
            yield key, cfg, scope
            scope = cfg.get('_scope_', scope)
        for name, item in cfg.items():
            yield from _iter_typed_tree(item, f'{key}.{name}', scope)


def _check_model(cfg: Config, scope: Optional[str]) -> None:
    """Check the type of the model and of every module config in it, at
    any depth: backbones, necks, heads, losses, norm layers, anchor
    generators, assigners, init configs.

    The model's type and its direct sub-modules must be models; deeper
    configs, which each module builds from a registry of its own choice,
    must resolve in some registry of their scope.
    """
    model = cfg.get('model')
    if not isinstance(model, dict) or 'type' not in model:
        return
    check_type(MODELS, model, 'model', scope)
    scope = model.get('_scope_', scope)
    for name, child in model.items():
        if name in _NON_MODULE_KEYS:
            continue
        for key, sub in _typed(child, f'model.{name}'):
            check_type(MODELS, sub, key, scope)
    for key, sub, sub_scope in _iter_typed_tree(model, 'model', scope):
        if key.count('.') > 1 and not _resolves_somewhere(sub, sub_scope):
            registry = WEIGHT_INITIALIZERS if '.init_cfg' in key \
                else MODELS
            check_type(registry, sub, key, sub_scope)


def _check_task_kinds(cfg: Config, scope: Optional[str]) -> None:
    """``model.task_kinds`` names tasks of ``model.tasks``, each by a
    registered kind that its task model's class does not contradict
    (:func:`mtl_pvt.tasks.config_task_kinds`)."""
    from mtl_pvt.tasks import all_kinds, kind_fits, kind_of_class
    model = cfg.get('model')
    given = model.get('task_kinds') if isinstance(model, dict) else None
    if not given:
        return
    if not isinstance(given, dict):
        raise ValueError('model.task_kinds must be a dict of task name -> '
                         f'kind name, not {given!r}')
    tasks = model.get('tasks')
    tasks = dict(tasks) if isinstance(tasks, dict) else {}
    kinds = all_kinds()
    for task, name in given.items():
        key = f'model.task_kinds.{task}'
        if task not in tasks:
            raise ValueError(f'{key}: {task!r} is not a task of model.tasks '
                             f'{list(tasks)}')
        if not isinstance(name, str) or name not in kinds:
            raise ValueError(f'{key}: {name!r} is not a registered task '
                             f'kind {sorted(kinds)}')
    for task, name in given.items():
        model_cls = get_type(MODELS, tasks[task], model.get('_scope_', scope))
        if not kind_fits(name, model_cls):
            raise ValueError(
                f'model.task_kinds.{task}: {name!r} contradicts the class '
                f'of model.tasks.{task} ({tasks[task].get("type")}, a '
                f'{kind_of_class(model_cls).name!r} task model)')


# Runtime parts of a config, the registry that builds them, and whether
# the part is a dict or list of configs (else one config).
_RUNTIME_TYPES = (
    ('optim_wrapper', OPTIM_WRAPPERS, False),
    ('optim_wrapper.optimizer', OPTIMIZERS, False),
    ('optim_wrapper.constructor', OPTIM_WRAPPER_CONSTRUCTORS, False),
    ('param_scheduler', PARAM_SCHEDULERS, True),
    ('default_hooks', HOOKS, True),
    ('custom_hooks', HOOKS, True),
    ('train_cfg', LOOPS, False),
    ('val_cfg', LOOPS, False),
    ('test_cfg', LOOPS, False),
    ('visualizer', VISUALIZERS, False),
    ('visualizer.vis_backends', VISBACKENDS, True),
    ('log_processor', LOG_PROCESSORS, False),
    ('model_wrapper_cfg', MODEL_WRAPPERS, False),
)


def _check_runtime(cfg: Config, scope: Optional[str],
                   stages: Sequence[str]) -> None:
    """Check the types of the optimizer, schedulers, hooks, loops,
    visualizer and the train dataloader's samplers."""
    for key, registry, many in _RUNTIME_TYPES:
        stage = key.split('_', 1)[0]
        if stage in STAGES and stage not in stages:
            continue
        first, *rest = key.split('.')
        value = cfg.get(first)
        for name in rest:
            value = value.get(name) if isinstance(value, dict) else None
        if isinstance(value, str) and key.endswith('constructor'):
            value = dict(type=value)
        if many:
            configs = list(_typed(value, key))
        elif isinstance(value, dict) and 'type' in value:
            configs = [(key, value)]
        else:
            configs = []
        for sub_key, sub in configs:
            check_type(registry, sub, sub_key, scope)
    if 'train' in stages:
        loader = cfg.get('train_dataloader') or {}
        for name in ('sampler', 'batch_sampler'):
            if isinstance(loader.get(name), dict) and \
                    'type' in loader[name]:
                check_type(DATA_SAMPLERS, loader[name],
                           f'train_dataloader.{name}', scope)


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
    """Check a dataset's type and its pipeline's types, with the configs
    nested in a transform (e.g. RandAugment's policies)."""
    check_type(DATASETS, dataset, key, scope)
    for name, transform, transform_scope in _iter_transforms(
            dataset.get('pipeline'), f'{key}.pipeline', scope):
        check_type(TRANSFORMS, transform, name, transform_scope)
        inner = transform.get('_scope_', transform_scope)
        for arg, value in transform.items():
            if arg == 'transforms':
                continue  # walked by _iter_transforms
            for sub_key, sub, sub_scope in _iter_typed_tree(
                    value, f'{name}.{arg}', inner):
                if not _resolves_somewhere(sub, sub_scope):
                    check_type(TRANSFORMS, sub, sub_key, sub_scope)


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


def check_task_names(names: Dict[str, Optional[Iterable[str]]]) -> None:
    """Raise if a task name cannot be one, or the places of a config name
    different tasks.

    Args:
        names (dict): Place (for the message) -> its task names, or None
            where the place does not name tasks.

    Raises:
        ValueError: e.g. ``model.tasks: task name 'c.l.s' contains '.'
            ...`` (:func:`mtl_pvt.structures.check_task_name`), or ``task
            names differ: model.tasks has ['cls', 'det', 'seg'] but
            val_evaluator has ['cls', 'det']``.
    """
    for place, tasks in names.items():
        for name in tasks or ():
            check_task_name(name, place)
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


def _check_balancing(cfg: Config, scope: Optional[str]) -> None:
    """Task balancing that cannot train: say so before anything runs."""
    wrapper = cfg.get('optim_wrapper') or {}
    wrapper_type = str(wrapper.get('type', 'OptimWrapper')).split('.')[-1]
    multi_task = wrapper_type.startswith('MultiTask')
    model = cfg.get('model') or {}
    if model.get('nonfinite_losses') == 'skip' and not multi_task:
        raise ValueError(
            "model.nonfinite_losses='skip' needs optim_wrapper type "
            f"'MultiTaskOptimWrapper', not {wrapper_type!r}")
    if not multi_task:
        return
    for key in ('weighting', 'aggregator'):
        if isinstance(wrapper.get(key), dict):
            registry = MODELS if key == 'weighting' else TASK_UTILS
            check_type(registry, wrapper[key], f'optim_wrapper.{key}', scope)
    sampler = (cfg.get('train_dataloader') or {}).get('batch_sampler') or {}
    if wrapper.get('aggregator') and sampler.get('mode') == 'alternating':
        raise ValueError(
            'optim_wrapper.aggregator combines the gradients of all tasks '
            'in each step, but train_dataloader.batch_sampler.mode is '
            "'alternating' (one task per step): use mode='joint', or a loss "
            'weighting (optim_wrapper.weighting) instead')
    weighting = wrapper.get('weighting') or {}
    hooks = [
        str(h.get('type', '')).split('.')[-1]
        for h in cfg.get('custom_hooks') or []
    ]
    if str(weighting.get('type', '')).split('.')[-1] == 'FAMO' and \
            weighting.get('variant', 'official') == 'official' and \
            'LossWeightingHook' not in hooks:
        raise ValueError(
            "optim_wrapper.weighting FAMO (variant='official') needs the "
            "losses after each step: add dict(type='LossWeightingHook') to "
            "custom_hooks, or use variant='next_step'")


def check_config(cfg: Config, stages: Sequence[str] = STAGES) -> None:
    """Check types, task names and local paths of a config before anything
    is built.

    Checks the model, the ``<stage>_dataloader`` datasets (wrappers and
    nested datasets included) with their pipelines and data paths, the
    ``<stage>_evaluator`` and ``load_from``. Stages without a dataloader are
    skipped. The val and test dataloaders and evaluators may be dicts by
    task name (``MultiTaskValLoop``); the task names must then agree
    between the model, the data and the evaluation (:func:`task_names`).
    A multi-task model's ``task_kinds`` must name its tasks by registered
    kinds that their task models' classes do not contradict.

    Args:
        cfg (Config): The full config.
        stages (Sequence[str]): Stages whose dataloaders and evaluators to
            check. Defaults to ('train', 'val', 'test').

    Raises:
        UnregisteredTypeError: A ``type`` does not resolve in its registry.
        ValueError: Two places name different tasks, dataloaders by task
            lack a loop type, or ``model.task_kinds`` names an unknown task
            or kind, or a kind that contradicts the task model.
        FileNotFoundError: A local data path, a metric's ``ann_file`` or
            ``load_from`` is missing.
    """
    scope = cfg.get('default_scope')
    datasets, metrics = [], []
    _check_model(cfg, scope)
    _check_task_kinds(cfg, scope)
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
    _check_runtime(cfg, scope, stages)
    check_task_names(task_names(cfg, stages))
    _check_task_loops(cfg, stages)
    if 'train' in stages:
        _check_balancing(cfg, scope)
    # Paths last: a typo is reported even where the data is not there yet.
    for key, dataset, _ in datasets:
        check_dataset_paths(dataset, key)
    for key, metric, _ in metrics:
        # e.g. CocoMetric's ground truth
        if is_local_path(metric.get('ann_file')):
            require_path(metric['ann_file'], f'{key}.ann_file')
    if is_local_path(cfg.get('load_from')):
        require_path(cfg.load_from, 'load_from')
