"""Single-task baselines matched to a multi-task config.

A multi-task (MTL) arm and a single-task (STL) baseline compare sharing
only if everything else is the same: batch, schedule, iterations,
optimizer, clipping, data, augmentation. :func:`matched_stl_config`
derives the STL baseline of one task from an MTL config: a one-task
``MultiTaskModel`` (the same wrapper, backbone arch and task model, so the
same code trains it) with the task's batch size, the MTL schedule and the
MTL optimizer. What cannot be matched is said in ``cfg.matched_stl.notes``.

Examples:
    >>> cfg = Config.fromfile('configs/demo/mtl/pvtv2_b0_no_share_demo.py')
    >>> stl = matched_stl_config(cfg, 'det')
    >>> stl.model.tasks.keys(), stl.model.backbone.share_stages
    (dict_keys(['det']), 0)
    >>> stl.train_dataloader.batch_sampler.batch_sizes
    {'det': 4}
    >>> stl.optim_wrapper.task_clip_grad     # the MTL run's clip_grad
    {'max_norm': 35, 'norm_type': 2}
    >>> stl.matched_stl.notes[0]
    'the MTL run clips the sum of the task gradients (optim_wrapper...'

:func:`matched_recipe_diff` compares what two arms' matched baselines of a
task train with (everything but the sharing), plus the MTL-only parts of
the recipe that the baselines leave out (loss weighting, gradient
aggregation, global clipping): a study checks with it that its arms differ
only in what it varies.
"""
import copy
from typing import Any, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mtl_pvt.evaluation.delta_m import DELTA_M_KEY
from mtl_pvt.structures import is_task_dict

# optimiser wrapper of the MTL config -> that of its STL baselines
STL_WRAPPERS = {
    'OptimWrapper': 'MultiTaskOptimWrapper',
    'AmpOptimWrapper': 'MultiTaskAmpOptimWrapper',
    'MultiTaskOptimWrapper': 'MultiTaskOptimWrapper',
    'MultiTaskAmpOptimWrapper': 'MultiTaskAmpOptimWrapper',
}
# hooks that need several tasks (affinity between tasks; it does not change
# training) or a loss weighting
MTL_ONLY_HOOKS = ('TaskAffinityHook', 'LossWeightingHook')
# parts of an MTL recipe that a matched baseline leaves out, but in which
# two arms can differ (optim_wrapper.<key>)
MTL_ONLY_OPTIM_KEYS = ('weighting', 'aggregator', 'aggregate_per', 'clip_grad')
# keys of a matched config that say nothing about its training
_NOT_RECIPE = ('matched_stl', 'work_dir')


def _type_name(cfg: Optional[dict]) -> str:
    """``cfg['type']`` without its scope (``'mmdet.RetinaNet'`` ->
    ``'RetinaNet'``), ``''`` without one."""
    return str((cfg or {}).get('type', '')).split('.')[-1]


def _where(cfg: Config) -> str:
    return cfg.filename or 'the config'


def check_multi_task(cfg: Config) -> List[str]:
    """The task names of a multi-task config.

    Raises:
        ValueError: ``cfg`` is not a ``MultiTaskModel`` config.
    """
    model = cfg.get('model') or {}
    if _type_name(model) != 'MultiTaskModel' or not is_task_dict(
            model.get('tasks')):
        raise ValueError(
            f'{_where(cfg)} is not a multi-task config: model.type is '
            f'{model.get("type")!r}, not MultiTaskModel with a dict of '
            'tasks; a matched single-task baseline is derived from a '
            'multi-task config')
    return list(model['tasks'])


def main_metric(cfg: Config, task: str) -> Optional[Tuple[str, bool]]:
    """``(metric, higher_is_better)`` of a task's ``delta_m`` reference in
    ``val_cfg``, ``test_cfg`` or the ``delta_m`` variable, else the main
    metric of the task's kind (:mod:`mtl_pvt.tasks`), else None."""
    loops = [(cfg.get(k) or {}).get('delta_m')
             for k in ('val_cfg', 'test_cfg')]
    for refs in loops + [cfg.get('delta_m')]:
        ref = (refs or {}).get(task)
        if isinstance(ref, dict) and isinstance(ref.get('metric'), str):
            return ref['metric'], bool(ref.get('higher_is_better', True))
    from mtl_pvt.tasks import config_task_kinds
    from mtl_pvt.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    kind = config_task_kinds(cfg.model, cfg.get('default_scope')).get(task)
    if kind is None:
        return None
    return kind.main_metric, kind.higher_is_better


def _one_task(value: Any, task: str) -> Any:
    """A dict by task reduced to ``task``'s entry; anything else as is."""
    if is_task_dict(value) and task in value:
        return {task: value[task]}
    return value


def _model(model: dict, task: str) -> dict:
    model['tasks'] = {task: model['tasks'][task]}
    backbone = model['backbone']
    backbone.pop('stage_groups', None)
    # one task: every tree is the same, a backbone of its own
    backbone['share_stages'] = 0
    if backbone.get('tasks') is not None:
        backbone['tasks'] = [task]
    if isinstance(backbone.get('out_indices'), dict):
        backbone['out_indices'] = {
            t: v
            for t, v in backbone['out_indices'].items() if t == task
        }
    for key in ('loss_weights', 'task_kinds'):
        if isinstance(model.get(key), dict):
            model[key] = {t: v for t, v in model[key].items() if t == task}
    return model


def _batch_sampler(loader: dict, task: str, strict: bool, where: str) -> None:
    sampler = loader.get('batch_sampler') or {}
    mode = sampler.get('mode', 'joint')
    if mode != 'joint':
        if strict:
            raise ValueError(
                f'{where}: train_dataloader.batch_sampler.mode is '
                f"{mode!r}: in alternating steps each task's updates are "
                "interleaved with the other tasks' schedule (one task per "
                'step, chosen by the policy), so no single-task run '
                'matches them; '
                "derive the baseline from a mode='joint' config")
        return  # compared as a whole
    if isinstance(sampler.get('batch_sizes'), dict):
        sampler['batch_sizes'] = {
            t: b
            for t, b in sampler['batch_sizes'].items() if t == task
        }


def _train_dataloader(loader: dict, task: str, strict: bool,
                      where: str) -> dict:
    dataset = loader.get('dataset') or {}
    if isinstance(dataset.get('datasets'), dict):
        dataset['datasets'] = {task: dataset['datasets'][task]}
    _batch_sampler(loader, task, strict, where)
    return loader


def _save_best(cfg: dict, task: str, tasks: List[str], metric,
               notes: List[str]) -> None:
    """Point the checkpoint hook's ``save_best`` at the task's metric."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if not isinstance(hook, dict) or not hook.get('save_best'):
        return
    keys = hook['save_best']
    keys = [keys] if isinstance(keys, str) else list(keys)
    rules = hook.get('rule')
    rules = [rules] * len(keys) if rules is None or isinstance(
        rules, str) else list(rules)
    kept = []
    for key, rule in zip(keys, rules):
        mine = key.startswith(task + '/')
        # delta-m, or another task's metric
        mtl = key == DELTA_M_KEY or not mine and key.split('/')[0] in tasks
        if mtl and metric is None:
            notes.append(f'default_hooks.checkpoint.save_best={key!r} has '
                         'no single-task counterpart (no delta_m reference '
                         f'of task {task!r} names its main metric, and its '
                         'kind is unknown): removed')
            continue
        if mtl:
            key = f'{task}/{metric[0]}'
            rule = 'greater' if metric[1] else 'less'
        if key not in [k for k, _ in kept]:
            kept.append((key, rule))
    hook.pop('save_best')
    hook.pop('rule', None)
    if len(kept) == 1:
        hook['save_best'], rule = kept[0]
        if rule is not None:
            hook['rule'] = rule
    elif kept:
        hook['save_best'] = [k for k, _ in kept]
        if any(r is not None for _, r in kept):
            hook['rule'] = [r for _, r in kept]


def _optim_wrapper(wrapper: dict, default_scope: Optional[str],
                   notes: List[str], where: str) -> dict:
    given = wrapper.get('type', 'OptimWrapper')
    name = str(given).split('.')[-1]
    if name not in STL_WRAPPERS:
        raise ValueError(
            f'{where}: optim_wrapper.type is {given!r}; a matched baseline is '
            f'derived from the optimiser wrappers {list(STL_WRAPPERS)}')
    if name != STL_WRAPPERS[name]:
        prefix = '' if default_scope == 'mtl_pvt' else 'mtl_pvt.'
        wrapper['type'] = prefix + STL_WRAPPERS[name]
    weighting = wrapper.pop('weighting', None)
    if weighting:
        notes.append(f'the MTL run weights the losses with '
                     f'{_type_name(weighting) or weighting!r} '
                     '(optim_wrapper.weighting): the STL baseline is '
                     'unweighted')
    aggregator = wrapper.pop('aggregator', None)
    if aggregator:
        notes.append(f'the MTL run combines the task gradients with '
                     f'{_type_name(aggregator) or aggregator!r} '
                     '(optim_wrapper.aggregator): the STL baseline takes '
                     "its task's gradient as it is")
    wrapper.pop('aggregate_per', None)
    clip = wrapper.get('clip_grad')
    if clip:
        limits = ', '.join(f'{k}={v}' for k, v in clip.items())
        if wrapper.get('task_clip_grad'):
            notes.append(
                'the MTL run clips each task gradient '
                '(optim_wrapper.task_clip_grad) and then their sum '
                f'(optim_wrapper.clip_grad, {limits}): the sum couples the '
                "tasks; the STL baseline clips its one task's gradient "
                'with both')
        else:
            wrapper.pop('clip_grad')
            wrapper['task_clip_grad'] = dict(clip)
            notes.append(
                'the MTL run clips the sum of the task gradients '
                f'(optim_wrapper.clip_grad, {limits}): the tasks rescale '
                "each other's updates; the STL baseline clips its task's "
                'gradient with the same limits '
                '(optim_wrapper.task_clip_grad), which a no-share MTL run '
                'matches only with optim_wrapper.task_clip_grad')
    return wrapper


def _loops(cfg: dict, task: str) -> None:
    for stage in ('val', 'test'):
        for key in (f'{stage}_dataloader', f'{stage}_evaluator'):
            cfg[key] = _one_task(cfg.get(key), task)
        loop = cfg.get(f'{stage}_cfg')
        if isinstance(loop, dict):
            loop.pop('delta_m', None)


def _stl_dict(cfg: Config, task: str, strict: bool) -> Tuple[dict, list]:
    """The matched baseline as a dict and its notes."""
    tasks = check_multi_task(cfg)
    if task not in tasks:
        raise ValueError(f'{_where(cfg)} has no task {task!r}; its tasks '
                         f'are {tasks}')
    notes: List[str] = []
    metric = main_metric(cfg, task)
    out = copy.deepcopy(cfg.to_dict())
    _model(out['model'], task)
    if isinstance(out.get('train_dataloader'), dict):
        _train_dataloader(out['train_dataloader'], task, strict, _where(cfg))
    _loops(out, task)
    _save_best(out, task, tasks, metric, notes)
    if isinstance(out.get('optim_wrapper'), dict):
        _optim_wrapper(out['optim_wrapper'], out.get('default_scope'), notes,
                       _where(cfg))
    hooks = out.get('custom_hooks')
    if hooks:
        out['custom_hooks'] = [
            h for h in hooks if _type_name(h) not in MTL_ONLY_HOOKS
        ]
    if out['model'].get('nonfinite_losses') == 'skip':
        notes.append("model.nonfinite_losses='skip': the MTL run skips a "
                     "step when any task's loss is not finite, the STL "
                     'baseline only when its own is not')
    if (out.get('randomness') or {}).get('seed') is None:
        notes.append('randomness.seed is not set: each run draws its own '
                     'seed, so the baseline and the MTL run do not start '
                     'from the same draws')
    # references of the MTL delta-m, which a baseline does not compute
    out.pop('delta_m', None)
    out.pop('work_dir', None)
    return out, notes


def matched_stl_config(cfg: Config, task: str) -> Config:
    """The single-task baseline of ``task`` matched to a multi-task config.

    A one-task ``MultiTaskModel`` config: the task's model config and the
    backbone arch of ``cfg`` with ``share_stages=0`` (the task's
    ``out_indices`` and ``loss_weights`` entries only), the task's dataset
    and batch size in the same joint batch sampler and sampler (seed
    included), the task's val/test dataloaders and evaluators, loops
    without ``delta_m`` and ``save_best`` on the task's main metric (from
    the ``delta_m`` references); the optimiser wrapper of the
    ``MultiTaskOptimWrapper`` family with the same optimizer,
    ``paramwise_cfg`` and ``accumulative_counts``, without ``weighting``
    and ``aggregator``, and a global ``clip_grad`` turned into
    ``task_clip_grad`` (the same for one task); ``train_cfg``,
    ``param_scheduler``, ``randomness``, ``default_hooks``, ``env_cfg``
    and ``log_processor`` unchanged, ``custom_hooks`` without
    ``TaskAffinityHook`` and ``LossWeightingHook``, no ``work_dir``.

    Args:
        cfg (Config): A multi-task config with joint steps.
        task (str): One of its tasks.

    Returns:
        Config: The baseline, with ``matched_stl=dict(source=<cfg's file>,
        task=task, notes=[...])``: what could not be matched, and why.

    Raises:
        ValueError: ``cfg`` is not a multi-task config, has no task
            ``task``, trains in alternating steps, or has an optimiser
            wrapper of another family.
    """
    out, notes = _stl_dict(cfg, task, strict=True)
    out['matched_stl'] = dict(source=cfg.filename, task=task, notes=notes)
    return Config(out)


def _diff(a: Any, b: Any, path: str = '') -> List[str]:
    """Dotted paths where ``a`` and ``b`` differ: the highest key whose
    values differ, except inside two dicts or two lists of one length."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = []
        for key in sorted(set(a) | set(b), key=str):
            where = f'{path}.{key}' if path else str(key)
            if key not in a or key not in b:
                keys.append(where)
            else:
                keys += _diff(a[key], b[key], where)
        return keys
    sequences = (list, tuple)
    if isinstance(a, sequences) and isinstance(b, sequences) and \
            len(a) == len(b):
        return [
            k for i, (x, y) in enumerate(zip(a, b))
            for k in _diff(x, y, f'{path}.{i}')
        ]
    return [] if a == b else [path]


def _mtl_only(cfg: Config) -> dict:
    wrapper = dict(cfg.get('optim_wrapper') or {})
    parts = {k: wrapper.get(k) for k in MTL_ONLY_OPTIM_KEYS}
    if parts['aggregate_per'] is None:
        parts['aggregate_per'] = 'task_set'  # the wrapper's default
    return dict(optim_wrapper=parts)


def matched_recipe_diff(cfg_a: Config, cfg_b: Config, task: str) -> List[str]:
    """Where two multi-task configs differ in anything but the sharing.

    Compares the matched baselines of ``task`` (:func:`matched_stl_config`,
    in which every sharing becomes ``share_stages=0``) and the parts of the
    MTL recipe that a baseline leaves out but two arms can differ in:
    ``optim_wrapper.weighting``, ``aggregator``, ``aggregate_per`` and
    ``clip_grad``. ``TaskAffinityHook`` is not compared: it does not change
    training. Configs of alternating steps are compared too, their batch
    sampler as a whole (though no baseline matches them).

    Args:
        cfg_a (Config): A multi-task config.
        cfg_b (Config): Another, with the task ``task``.
        task (str): The task whose baseline recipes are compared.

    Returns:
        list[str]: The differing keys as dotted paths
        (``'train_dataloader.batch_sampler.batch_sizes.det'``,
        ``'optim_wrapper.weighting.type'``, ``'custom_hooks'`` when the
        lists differ in length), sorted; empty if the recipes agree.
    """
    recipes = []
    for cfg in (cfg_a, cfg_b):
        out, _ = _stl_dict(cfg, task, strict=False)
        for key in _NOT_RECIPE:
            out.pop(key, None)
        out.update(_mtl_only(cfg))
        recipes.append(out)
    return sorted(_diff(*recipes))


def filter_varied(keys: Sequence[str], varied: Sequence[str]) -> List[str]:
    """``keys`` that are not ``varied`` nor below one (dotted prefixes)."""
    return [
        k for k in keys
        if not any(k == v or k.startswith(v + '.') for v in varied)
    ]
