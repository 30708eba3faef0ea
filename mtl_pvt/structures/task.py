"""The task protocol: which task a sample, a config or a loss belongs to.

Everything that tags or reads a sample's task, recognises a per-task config
dict or splits a loss dict by task imports it from here, so each convention
lives in one place:

- a data sample carries its task name in ``metainfo['task']``
  (:func:`tag_task` writes it, :func:`sample_task` reads it);
- a per-task config is a dict keyed by task name, e.g.
  ``val_dataloader=dict(cls=dict(...), det=dict(...))``
  (:func:`is_task_dict`);
- ``MultiTaskModel.loss()`` prefixes every key of a task model's loss dict
  with ``'<task>.'`` (:func:`task_of_loss_key`), and
  :func:`split_losses_by_task` sums each task's terms, which
  ``MultiTaskModel.train_step`` hands to the optimiser wrapper;
- a task name can be all of these prefixes and a module name
  (:func:`check_task_name`).
"""
from typing import Any, Dict, Iterable, Mapping, Optional

import torch

# metainfo key of a sample's task
TASK_KEY = 'task'
# prefix of the metrics of no single task ('mtl/delta_m')
MTL_PREFIX = 'mtl'
# keys that make a dict one dataloader, dataset, metric or evaluator config
_SINGLE_CONFIG_KEYS = ('type', 'dataset', 'metrics')


def tag_task(data: Any, task: str, required: bool = True) -> Any:
    """Write ``task`` into the metainfo of the data sample(s) of ``data``.

    Args:
        data (dict): A packed item (``data_samples`` one sample) or a batch
            (``data_samples`` a list), as a pipeline or dataloader gives it.
        task (str): The task name.
        required (bool): Whether ``data`` must hold data samples. Defaults
            to True.

    Returns:
        The same ``data``, its samples tagged.

    Raises:
        TypeError: ``required`` and ``data`` holds no data samples.
    """
    samples = data.get('data_samples') if isinstance(data, dict) else None
    if samples is None:
        if not required:
            return data
        raise TypeError(
            f'an item of task {task!r} has no "data_samples": its pipeline '
            'must end with a Pack* transform (PackDetInputs, ...), but the '
            f'item is a {type(data).__name__}')
    for sample in samples if isinstance(samples, list) else [samples]:
        sample.set_metainfo({TASK_KEY: task})
    return data


def sample_task(data_sample, index: int, default: Optional[str]) -> str:
    """The task name in a data sample's metainfo, or ``default``.

    Raises:
        KeyError: The sample has no task and there is no ``default``.
    """
    task = data_sample.metainfo.get(TASK_KEY, default) \
        if data_sample is not None else default
    if task is None:
        raise KeyError(f'data sample {index} of the batch has no "task" in '
                       'its metainfo, and the model has several tasks')
    return task


def is_task_dict(cfg) -> bool:
    """Whether ``cfg`` is a dict of configs keyed by task name, e.g.
    ``val_dataloader=dict(cls=dict(dataset=...), det=dict(dataset=...))``,
    rather than one dataloader, dataset, metric or evaluator config."""
    return isinstance(cfg, dict) and bool(cfg) and \
        not set(_SINGLE_CONFIG_KEYS) & set(cfg) and \
        not any(v is None or isinstance(v, (str, int, float))
                for v in cfg.values())


def check_task_name(name: Any, where: str) -> None:
    """Raise unless ``name`` can name a task everywhere a name goes.

    A task name is a key of ``ModuleDict`` s (no ``'.'``, not one of its
    attributes), the prefix of loss keys (``'<task>.loss_cls'``) and of
    metrics (``'<task>/accuracy/top1'``, so no ``'/'``), and must not be
    ``'mtl'``, the prefix of the metrics of no single task.

    Args:
        name: The task name.
        where (str): Where it was given (a config key), for the message.

    Raises:
        ValueError: e.g. ``model.tasks: task name 'c.l.s' contains '.'
            ...``.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f'{where}: a task name must be a non-empty string, '
                         f'not {name!r}')
    for char, why in (('.', "torch module names cannot contain '.', and "
                       "loss keys are split at the first '.'"),
                      ('/', "metric names are split at the first '/'")):
        if char in name:
            raise ValueError(f'{where}: task name {name!r} contains '
                             f'{char!r}: {why}; rename the task, e.g. '
                             f'{name.replace(char, "_")!r}')
    if name == MTL_PREFIX:
        raise ValueError(f"{where}: task name {name!r} is reserved: "
                         f"'{MTL_PREFIX}/' prefixes the metrics of all tasks "
                         "together (mtl/delta_m)")
    # the task models' ModuleDict refuses keys that are its attributes
    from mmengine.model import ModuleDict
    if hasattr(ModuleDict(), name):
        raise ValueError(f'{where}: task name {name!r} is an attribute of '
                         "the task models' ModuleDict (mmengine); "
                         'rename the task')


# attribute of the parsed total loss that carries the per-task sums


def task_of_loss_key(key: str, tasks: Iterable[str]) -> Optional[str]:
    """The task of a ``'<task>.<name>'`` loss key, or None.

    Args:
        key (str): A key of the model's loss dict.
        tasks (Iterable[str]): The model's task names.

    Returns:
        str, optional: The task, None for a key of no task.
    """
    task, dot, _ = key.partition('.')
    return task if dot and task in set(tasks) else None


def split_losses_by_task(losses: Mapping[str, torch.Tensor],
                         tasks: Iterable[str]) -> Dict[str, torch.Tensor]:
    """Sum of each task's loss terms, as ``BaseModel.parse_losses`` sums.

    Only keys that contain ``'loss'`` count (mmengine's convention); a
    value may be a tensor or a list of tensors (summed after their means).

    Args:
        losses (Mapping[str, Tensor]): ``MultiTaskModel.loss()`` output.
        tasks (Iterable[str]): The model's task names.

    Returns:
        dict[str, Tensor]: Task -> its summed loss, for the tasks present,
        in the order of ``losses``.
    """
    tasks = list(tasks)
    result: Dict[str, torch.Tensor] = {}
    for key, value in losses.items():
        task = task_of_loss_key(key, tasks)
        if task is None or 'loss' not in key.partition('.')[2]:
            continue
        if isinstance(value, torch.Tensor):
            term = value.mean()
        else:
            term = sum(v.mean() for v in value)
        result[task] = term if task not in result else result[task] + term
    return result
