"""Registry nodes of mtl_pvt, children of MMEngine's root registries.

Each node's ``locations`` lists the modules that register into it, so that a
config that only names ``type='mtl_pvt.X'`` (or ``default_scope='mtl_pvt'``)
imports what it needs. Modules of mmdet, mmseg and mmpretrain are reached
with a scope prefix (``type='mmdet.RetinaNet'``) or ``_scope_``.
"""
from typing import Optional

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

RUNNERS = Registry(
    'runner', parent=MMENGINE_RUNNERS, locations=['mtl_pvt.apis'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['mtl_pvt.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['mtl_pvt.engine'])

DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['mtl_pvt.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMENGINE_DATA_SAMPLERS,
    locations=['mtl_pvt.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=['mtl_pvt.datasets'])

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, locations=['mtl_pvt.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    locations=['mtl_pvt.engine'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    locations=['mtl_pvt.models'])
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=['mtl_pvt.models'])

OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=['mtl_pvt.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    locations=['mtl_pvt.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['mtl_pvt.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMENGINE_PARAM_SCHEDULERS,
    locations=['mtl_pvt.engine'])

METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, locations=['mtl_pvt.evaluation'])
EVALUATOR = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, locations=['mtl_pvt.evaluation'])

VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, locations=['mtl_pvt.engine'])
VISBACKENDS = Registry(
    'vis_backend', parent=MMENGINE_VISBACKENDS, locations=['mtl_pvt.engine'])
# mtl_pvt's own: the kinds of task (classification, detection, ...), see
# mtl_pvt.tasks
TASK_KINDS = Registry('task kind', locations=['mtl_pvt.tasks'])

# the sections of the multi-task report after its table, see
# mtl_pvt.report.section
REPORT_SECTIONS = Registry('report section', locations=['mtl_pvt.report'])

LOG_PROCESSORS = Registry(
    'log_processor',
    parent=MMENGINE_LOG_PROCESSORS,
    locations=['mtl_pvt.engine'])


def registry_in_scope(registry: Registry, scope: Optional[str]) -> Registry:
    """The node of ``registry``'s tree that builds in ``scope`` (itself
    when the scope has none), found as MMEngine's ``build`` finds it:
    ``{scope}.registry`` imported, then the scope's child registry."""
    if scope is None:
        return registry
    with registry.switch_scope_and_registry(scope) as node:
        return node


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
    node = registry_in_scope(registry, cfg.get('_scope_', scope))
    try:
        return node.get(obj_type)
    except Exception:  # Registry.get raises for some unknown names.
        return None
