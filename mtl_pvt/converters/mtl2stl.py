"""Export task branches of a multi-task checkpoint as native OpenMMLab
models.

A branch is a task model of ``MultiTaskModel.tasks`` plus its path through
the ``SharedPVTv2``. Exported, it is a plain checkpoint of mmpretrain, mmdet
or mmseg (``backbone.layers.{i}.*`` and the task model's own keys) and a
standalone config whose only import is ``mmdet.models`` (for
``PyramidVisionTransformerV2``)::

    MTL state  -> shared_to_plain(task)          -> backbone.layers.{i}.*
               -> tasks.{task}.* minus prefix    -> neck.*, head.* ...
    MTL config -> model.tasks[task], backbone = mmdet PVT v2 (shared arch)
               -> kind.export_model_cfg(): mtl_pvt modules replaced
               -> {val,test}_{dataloader,evaluator}[task], runtime of the
                  library, default_scope of the library

The task's kind (:mod:`mtl_pvt.tasks`, from the model's ``task_kinds``, so
task names are free) gives the library, its visualiser and visualisation
hook, and replaces what the library cannot build: a classifier's
``ListGlobalAveragePooling`` neck becomes mmdet's ``DyHead`` without blocks
and mmpretrain's ``GlobalAveragePooling``, with the same outputs and state
dict (:meth:`Classification.export_model_cfg`).
"""
import copy
import os.path as osp
from collections import OrderedDict
from typing import Dict, Iterator, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS, DefaultScope
from mmengine.utils import mkdir_or_exist

from mtl_pvt.structures import is_task_dict, to_plain_meta
from mtl_pvt.tasks import (TaskKind, all_kinds, config_task_kinds,
                           model_task_kinds)
from mtl_pvt.utils.builder import build_model_from_config
from .stl2mtl import BACKBONE, load_checkpoint_file

DATA_KEYS = ('val_dataloader', 'val_evaluator', 'test_dataloader',
             'test_evaluator')


def kind_of_task(cfg: Config, task: str) -> TaskKind:
    """The kind of ``task`` of an MTL config (its ``task_kinds``, else the
    class of its task model).

    Raises:
        ValueError: For a task of no known kind.
    """
    kind = config_task_kinds(cfg.model, cfg.get('default_scope'))[task]
    if kind is None:
        raise ValueError(f'cannot export task {task!r}: its task model '
                         f'{cfg.model.tasks[task].get("type")!r} is of no '
                         f'known kind {sorted(all_kinds())}; name its kind '
                         'in model.task_kinds')
    return kind


def strip_scope(cfg, scope: str):
    """``cfg`` with ``'{scope}.'`` type prefixes and ``_scope_=scope``
    removed, which change nothing under ``default_scope=scope``."""
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(strip_scope(v, scope) for v in cfg)
    if not isinstance(cfg, Mapping):
        return cfg
    out = {}
    for key, value in cfg.items():
        if key == '_scope_' and value == scope:
            continue
        if key == 'type' and isinstance(value, str) and \
                value.startswith(scope + '.'):
            value = value[len(scope) + 1:]
        out[key] = strip_scope(value, scope)
    return out


def export_model_cfg(task_cfg: Mapping, backbone, task: str,
                     kind: TaskKind) -> dict:
    """The task model config with a plain mmdet PVT v2 backbone and the
    rest as its kind exports it (:meth:`TaskKind.export_model_cfg`).

    Args:
        task_cfg (dict): ``model.tasks[task]`` of the MTL config.
        backbone (SharedPVTv2): The built shared backbone.
        task (str): The task.
        kind (TaskKind): The task's kind.

    Returns:
        dict: The STL model config.
    """
    cfg = copy.deepcopy(_to_dict(task_cfg))
    cfg['backbone'] = backbone.plain_cfg(task)
    return kind.export_model_cfg(cfg, backbone, task)


def export_data_cfg(cfg: Config, task: str) -> dict:
    """The task's val/test dataloaders and evaluators, with the loops and
    a top-level ``test_pipeline`` (mmseg's inference API reads it)."""
    out = {}
    for key in DATA_KEYS:
        value = cfg.get(key)
        if is_task_dict(value) and task in value:
            out[key] = _to_dict(value[task])
    for stage in ('val', 'test'):
        if f'{stage}_dataloader' in out and f'{stage}_evaluator' in out:
            out[f'{stage}_cfg'] = dict(type=f'{stage.capitalize()}Loop')
        else:
            out.pop(f'{stage}_dataloader', None)
            out.pop(f'{stage}_evaluator', None)
    loader = out.get('test_dataloader') or out.get('val_dataloader')
    if loader is not None and 'pipeline' in loader.get('dataset', {}):
        out['test_pipeline'] = copy.deepcopy(loader['dataset']['pipeline'])
    return out


def export_runtime_cfg(cfg: Config, kind: TaskKind) -> dict:
    """A plain runtime of ``kind``'s library: its visualisation hook and
    visualizer (the type only), the MTL config's ``env_cfg``; no mtl_pvt
    hooks."""
    vis_backends = [dict(type='LocalVisBackend')]
    return dict(
        default_scope=kind.library,
        custom_imports=dict(
            imports=['mmdet.models'], allow_failed_imports=False),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=50),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', interval=1),
            sampler_seed=dict(type='DistSamplerSeedHook'),
            visualization=copy.deepcopy(kind.test_visualization_hook)),
        env_cfg=_to_dict(cfg.get('env_cfg', {})),
        vis_backends=vis_backends,
        visualizer=dict(
            type=kind.visualizer['type'],
            vis_backends=vis_backends,
            name='visualizer'),
        log_processor=dict(type='LogProcessor', window_size=50),
        log_level='INFO',
        load_from=None,
        resume=False)


def export_config(cfg: Config,
                  backbone,
                  task: str,
                  kind: Optional[TaskKind] = None) -> Config:
    """The standalone config of ``task``'s branch, in the library of its
    kind.

    Args:
        cfg (Config): The MTL config.
        backbone (SharedPVTv2): The built shared backbone.
        task (str): The task.
        kind (TaskKind, optional): The task's kind; None: from the config
            (:func:`kind_of_task`). Defaults to None.

    Raises:
        ValueError: If the task is of no known kind, or the result still
            names mtl_pvt.
    """
    kind = kind_of_task(cfg, task) if kind is None else kind
    cfg_dict = export_runtime_cfg(cfg, kind)
    cfg_dict['model'] = export_model_cfg(cfg.model.tasks[task], backbone, task,
                                         kind)
    cfg_dict.update(export_data_cfg(cfg, task))
    cfg_dict = strip_scope(cfg_dict, kind.library)
    left = [
        f'{key}: {value!r}' for key, value in _strings(cfg_dict, '')
        if 'mtl_pvt' in value
    ]
    if left:
        raise ValueError(f'the exported config of task {task!r} still '
                         'needs mtl_pvt:\n  ' + '\n  '.join(left))
    return Config(cfg_dict)


def export_state_dict(state: Mapping[str, torch.Tensor], backbone,
                      task: str) -> Dict[str, torch.Tensor]:
    """``task``'s branch of an MTL state dict in the STL layout.

    Args:
        state (dict): The MTL state dict (``backbone.stages.*``,
            ``tasks.*``).
        backbone (SharedPVTv2): The shared backbone, for the task's path.
        task (str): The task.

    Returns:
        dict: ``backbone.layers.{i}.*`` and the task model's own keys.
    """
    shared = {k: v for k, v in state.items() if k.startswith(BACKBONE)}
    plain = backbone.shared_to_plain(shared, task, prefix=BACKBONE)
    head = f'tasks.{task}.'
    out = OrderedDict(plain)
    out.update(
        (k[len(head):], v) for k, v in state.items() if k.startswith(head))
    return out


def check_exported(cfg: Config, state: Mapping[str, torch.Tensor]) -> None:
    """Build the exported model in its library and load ``state`` strictly.
    """
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(copy.deepcopy(cfg.model))
    model.load_state_dict(state, strict=True)


def task_dataset_meta(cfg: Config, meta: Mapping, task: str) -> dict:
    """``dataset_meta`` of ``task``: from the MTL checkpoint (one per task,
    as ``MultiTaskDataset`` saves it), else the metainfo in the config."""
    saved = meta.get('dataset_meta')
    if isinstance(saved, Mapping) and isinstance(saved.get(task), Mapping):
        return to_plain_meta(saved[task])
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        if is_task_dict(loader) and task in loader:
            metainfo = loader[task].get('dataset', {}).get('metainfo')
            if metainfo:
                return to_plain_meta(_to_dict(metainfo))
    return {}


def mtl_to_stl(
        config,
        checkpoint,
        tasks: Optional[Sequence[str]] = None
) -> Dict[str, Tuple[Config, dict]]:
    """Export task branches of an MTL checkpoint.

    Args:
        config (str | Config): The MTL config (file).
        checkpoint (str | dict): The MTL checkpoint (path or loaded).
        tasks (Sequence[str], optional): Tasks to export. Defaults to all.

    Returns:
        dict[str, tuple[Config, dict]]: Task -> its standalone config and
        checkpoint (``state_dict`` and ``meta`` with ``dataset_meta``).
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    model = build_model_from_config(cfg)
    tasks = list(tasks or model.task_names)
    unknown = sorted(set(tasks) - set(model.task_names))
    if unknown:
        raise ValueError(f'unknown task(s) {unknown} (the config has '
                         f'{model.task_names})')
    kinds = model_task_kinds(model)
    state, meta = load_checkpoint_file(checkpoint)
    source = checkpoint if isinstance(checkpoint, str) else None
    exports = {}
    for task in tasks:
        task_cfg = export_config(cfg, model.backbone, task, kinds[task])
        task_state = export_state_dict(state, model.backbone, task)
        check_exported(task_cfg, task_state)
        task_meta = dict(
            dataset_meta=task_dataset_meta(cfg, meta, task),
            exported_from=dict(
                config=cfg.filename, checkpoint=source, task=task))
        exports[task] = (task_cfg, dict(state_dict=task_state, meta=task_meta))
    return exports


def save_exports(exports: Mapping[str, Tuple[Config, dict]], out_dir: str,
                 name: str) -> Dict[str, Tuple[str, str]]:
    """Write each export as ``{out_dir}/{name}_{task}.py`` and ``.pth``.

    Returns:
        dict[str, tuple[str, str]]: Task -> (config path, checkpoint path).
    """
    mkdir_or_exist(out_dir)
    paths = {}
    for task, (cfg, ckpt) in exports.items():
        stem = osp.join(out_dir, f'{name}_{task}')
        cfg.dump(stem + '.py')
        torch.save(ckpt, stem + '.pth')
        paths[task] = (stem + '.py', stem + '.pth')
    return paths


def _to_dict(cfg):
    """A ConfigDict (or a list of them) as plain dicts and lists."""
    if isinstance(cfg, ConfigDict):
        return cfg.to_dict()
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_to_dict(v) for v in cfg)
    return cfg


def _strings(cfg, key: str) -> Iterator[Tuple[str, str]]:
    """Every string value of ``cfg`` with its key path."""
    if isinstance(cfg, str):
        yield key, cfg
    elif isinstance(cfg, Mapping):
        for name, value in cfg.items():
            yield from _strings(value, f'{key}.{name}' if key else name)
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from _strings(value, f'{key}[{i}]')
