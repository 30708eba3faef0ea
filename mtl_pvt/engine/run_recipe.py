"""What a run's data order and updates depend on, kept in its checkpoints.

A resumed run continues the sampler at the checkpoint's iteration, the
schedule at its step and (for a matched baseline) the equality with its
single-task run, all of which assume the recipe that wrote the
checkpoint. :func:`run_recipe` reads that recipe from the built Runner:
the tasks, each task's batch size per process, the batch sampler's mode
and its task choice, the number of processes, the seeds and the sharing
tree; :func:`recipe_changes` lists what a resume would change, each line
named by the config key that sets it, e.g.::

    train_dataloader.batch_sampler.batch_sizes.cls: 6 -> 3
    world size (processes): 1 -> 2

``MultiTaskCheckpointHook`` stores the recipe in every checkpoint's meta
and refuses a resume that changes it unless the config sets
``accept_recipe_change=True`` (``tools/train.py --accept-recipe-change``).
"""
from typing import Any, Dict, List, Optional

from mmengine.model import is_model_wrapper

# checkpoint['meta'] key of the recipe
RECIPE_KEY = 'mtl_recipe'
# the config switch that lets a resume change the recipe (logged)
ACCEPT_KEY = 'accept_recipe_change'
WORLD_SIZE = 'world size (processes)'


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def _plain(value: Any) -> Any:
    """Lists, dicts, str, int, float and None only (tuples -> lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, 'item') and callable(value.item):  # numpy, torch
        return value.item()
    return value


def _sampler_recipe(loader) -> Dict[str, Any]:
    """The batch sampler's share of the recipe (a multi-task one: per-task
    batch sizes, mode, task choice, seed; else the batch size)."""
    key = 'train_dataloader'
    batch_sampler = getattr(loader, 'batch_sampler', None)
    sampler = getattr(batch_sampler, 'sampler', None) or \
        getattr(loader, 'sampler', None)
    recipe: Dict[str, Any] = {}
    sizes = getattr(batch_sampler, 'batch_sizes', None)
    if isinstance(sizes, dict):
        prefix = f'{key}.batch_sampler'
        recipe[f'{prefix}.batch_sizes'] = dict(sizes)
        recipe[f'{prefix}.mode'] = batch_sampler.mode
        if batch_sampler.mode == 'alternating':
            recipe[f'{prefix}.policy'] = batch_sampler.policy
            probabilities = batch_sampler.task_probabilities
            if probabilities is not None:
                recipe[f'{prefix} (task probabilities)'] = probabilities
    else:
        recipe[f'{key}.batch_size'] = getattr(loader, 'batch_size', None)
    if getattr(sampler, 'seed', None) is not None:
        recipe[f'{key}.sampler.seed'] = sampler.seed
    return recipe


def run_recipe(runner) -> Dict[str, Any]:
    """The recipe of a Runner's training run, as plain data.

    Args:
        runner (Runner): A Runner whose train loop is built.

    Returns:
        dict: Config key (or a description) -> value.
    """
    model = _unwrap(runner.model)
    recipe: Dict[str, Any] = {}
    tasks = getattr(model, 'task_names', None)
    if tasks is not None:
        recipe['model.tasks'] = list(tasks)
    tree = getattr(getattr(model, 'backbone', None), 'sharing_tree', None)
    if callable(tree):
        recipe['model.backbone (sharing tree)'] = tree()
    loop = runner.train_loop
    loader = getattr(loop, 'dataloader', None)
    if loader is not None:
        recipe.update(_sampler_recipe(loader))
    recipe[WORLD_SIZE] = runner.world_size
    recipe['randomness.seed'] = runner.seed
    return _plain(recipe)


def _flat(recipe: Dict[str, Any]) -> Dict[str, Any]:
    """Dict values one level down, as ``key.subkey`` (per-task values)."""
    flat = {}
    for key, value in recipe.items():
        if isinstance(value, dict) and value:
            for sub, item in value.items():
                flat[f'{key}.{sub}'] = item
        else:
            flat[key] = value
    return flat


def recipe_changes(saved: Optional[Dict[str, Any]],
                   current: Dict[str, Any]) -> List[str]:
    """The lines ``'<key>: <saved> -> <current>'`` where they differ.

    A key that only one side has reads ``(none)`` on the other. A checkpoint
    without a recipe (written before recipes were recorded) gives no lines.

    Args:
        saved (dict, optional): The recipe in the checkpoint.
        current (dict): The recipe of the resuming run.

    Returns:
        list[str]: One line per difference, in the current recipe's order.
    """
    if not saved:
        return []
    old, new = _flat(_plain(saved)), _flat(_plain(current))

    def show(recipe, key):
        return repr(recipe[key]) if key in recipe else '(none)'

    return [
        f'{key}: {show(old, key)} -> {show(new, key)}'
        for key in list(new) + [k for k in old if k not in new]
        if key not in old or key not in new or old[key] != new[key]
    ]
