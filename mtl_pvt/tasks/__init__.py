"""Task kinds: what mtl_pvt knows of each kind of task, one module a kind.

A task's *name* is free (``model.tasks`` keys such as ``imnet``,
``places``, ``coco``); its *kind* (``cls``, ``det``, ``seg``) is one of the
registered :class:`TaskKind` s. A multi-task config may name the kinds,
``model=dict(type='MultiTaskModel', tasks=..., task_kinds=dict(imnet='cls'))``;
a task it leaves out gets the kind whose task model base class its model
type subclasses (``mmpretrain.ImageClassifier`` -> ``cls``).

Adding a kind is one new module here that subclasses :class:`TaskKind`,
registers it in ``TASK_KINDS`` and is imported below.
"""
from typing import Dict, Mapping, Optional

import torch.nn as nn

from mtl_pvt.registry import TASK_KINDS
from .base import TaskKind, import_object
from .classification import Classification
from .detection import Detection
from .segmentation import Segmentation

__all__ = [
    'TaskKind', 'Classification', 'Detection', 'Segmentation', 'all_kinds',
    'get_kind', 'kind_fits', 'kind_of_model', 'kind_of_class',
    'kind_of_config', 'config_task_kinds', 'model_task_kinds',
    'resolve_task_kinds', 'import_object', 'libraries'
]

_INSTANCES: Dict[str, TaskKind] = {}


def all_kinds() -> Dict[str, TaskKind]:
    """Every registered kind, by name, in the order of registration (one
    instance a class)."""
    kinds = {}
    for name, cls in TASK_KINDS.module_dict.items():
        if name not in _INSTANCES or type(_INSTANCES[name]) is not cls:
            _INSTANCES[name] = cls()
        kinds[name] = _INSTANCES[name]
    return kinds


def get_kind(kind) -> TaskKind:
    """The kind named ``kind`` (a name, or a kind already).

    Raises:
        KeyError: An unknown name; the message lists the known ones.
    """
    if isinstance(kind, TaskKind):
        return kind
    kinds = all_kinds()
    if kind not in kinds:
        raise KeyError(f'unknown task kind {kind!r}; the registered kinds '
                       f'are {sorted(kinds)}')
    return kinds[kind]


def libraries() -> list:
    """The libraries of the registered kinds, each once, in order."""
    return list(dict.fromkeys(k.library for k in all_kinds().values()))


def _matching(model_cls: type) -> list:
    """The kinds whose base class ``model_cls`` subclasses, the most
    specific first (a kind whose base derives from another kind's base,
    e.g. mmseg's ``DepthEstimator`` from ``BaseSegmentor``, comes first)."""
    matches = [
        kind for kind in all_kinds().values()
        if issubclass(model_cls, kind.model_class())
    ]
    return sorted(matches, key=lambda k: -len(k.model_class().__mro__))


def kind_of_class(model_cls: Optional[type]) -> Optional[TaskKind]:
    """The most specific kind whose base class ``model_cls`` subclasses, or
    None."""
    if not isinstance(model_cls, type):
        return None
    matches = _matching(model_cls)
    return matches[0] if matches else None


def kind_fits(kind, model_cls: Optional[type]) -> bool:
    """Whether a task model of class ``model_cls`` may be of ``kind`` (a
    kind or its name): it subclasses the kind's base, or no kind's base at
    all (a model mtl_pvt does not know, which the config names)."""
    if not isinstance(model_cls, type) or kind_of_class(model_cls) is None:
        return True
    return get_kind(kind) in _matching(model_cls)


def kind_of_model(model: nn.Module) -> Optional[TaskKind]:
    """The most specific kind whose task model base class ``model`` is an
    instance of, or None."""
    return kind_of_class(type(model))


def _config_class(model_cfg: Mapping, scope: Optional[str]) -> Optional[type]:
    """The class a model config's ``type`` names, or None."""
    from mtl_pvt.registry import MODELS, get_type
    if not isinstance(model_cfg, Mapping) or 'type' not in model_cfg:
        return None
    return get_type(MODELS, dict(model_cfg), scope)


def kind_of_config(model_cfg: Mapping,
                   scope: Optional[str] = None) -> Optional[TaskKind]:
    """The kind of the model a config builds, found from the class its
    ``type`` names (the libraries must be registered:
    ``register_all_modules()``), or None for a model of no known kind.

    Args:
        model_cfg (Mapping): A task model (or single-task model) config.
        scope (str, optional): The scope in effect (the config's
            ``default_scope``). Defaults to None.
    """
    return kind_of_class(_config_class(model_cfg, scope))


def _resolve(task: str, given: Optional[str],
             model_cls: Optional[type]) -> Optional[TaskKind]:
    """``given`` (a kind name) if its base class fits ``model_cls``, else
    the kind that ``model_cls`` gives."""
    found = kind_of_class(model_cls)
    if given is None:
        return found
    kind = get_kind(given)
    if not kind_fits(kind, model_cls):
        raise ValueError(f'task {task!r}: task_kinds names it {kind.name!r} '
                         f'but its task model is a {found.name!r} model '
                         f'(a {found.model_base.rsplit(".", 1)[-1]}, not a '
                         f'{kind.model_base.rsplit(".", 1)[-1]})')
    return kind


def _check_names(tasks, task_kinds: Mapping) -> None:
    unknown = sorted(set(task_kinds) - set(tasks))
    if unknown:
        raise ValueError(f'task_kinds names {unknown}, which are not tasks '
                         f'of the model {list(tasks)}')


def config_task_kinds(
        model_cfg: Mapping,
        scope: Optional[str] = None) -> Dict[str, Optional[TaskKind]]:
    """Task name -> kind of a model config, without building it.

    A multi-task config (``tasks``) gives its ``task_kinds`` and the kinds
    of its task model types; a single-task config gives ``{kind.name:
    kind}`` (an empty dict for a model of no known kind).

    Raises:
        ValueError: ``task_kinds`` names a task the model lacks, or a kind
            that contradicts the task model's class.
        KeyError: An unknown kind name.
    """
    if 'tasks' not in model_cfg:
        kind = kind_of_config(model_cfg, scope)
        return {} if kind is None else {kind.name: kind}
    given = dict(model_cfg.get('task_kinds') or {})
    _check_names(model_cfg['tasks'], given)
    return {
        task: _resolve(task, given.get(task), _config_class(cfg, scope))
        for task, cfg in model_cfg['tasks'].items()
    }


def model_task_kinds(model: nn.Module) -> Dict[str, Optional[TaskKind]]:
    """Task name -> kind of a built model: a ``MultiTaskModel``'s
    ``task_kinds``; ``{kind.name: kind}`` for a single-task model of a
    known kind, else ``{}``."""
    names = getattr(model, 'task_kinds', None)
    if isinstance(names, Mapping):
        return {
            task: None if name is None else get_kind(name)
            for task, name in names.items()
        }
    kind = kind_of_model(model)
    return {} if kind is None else {kind.name: kind}


def resolve_task_kinds(
    tasks: Mapping[str, nn.Module],
    task_kinds: Optional[Mapping[str,
                                 str]] = None) -> Dict[str, Optional[str]]:
    """Task name -> kind name of built task models, ``task_kinds`` first
    (checked against each model's class); None for a model of no known
    kind that ``task_kinds`` does not name."""
    given = dict(task_kinds or {})
    _check_names(tasks, given)
    out = {}
    for task, model in tasks.items():
        kind = _resolve(task, given.get(task), type(model))
        out[task] = None if kind is None else kind.name
    return out
