"""Per-task sample counts and losses of multi-task training, for the logs."""
from typing import Dict, List, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mtl_pvt.registry import HOOKS
from mtl_pvt.structures import sample_task, task_of_loss_key


@HOOKS.register_module()
class TaskMonitorHook(Hook):
    """Log, per task, the samples seen so far and the task's summed loss.

    After every train iteration, for each task with samples in the batch
    (found by their ``metainfo['task']``), the message hub gets:

    - ``train/<task>.samples_seen``: the samples of the task trained on
      since the start of training, over all ranks. The count is kept in the
      hub's runtime info, which checkpoints carry, so a resumed run counts
      on; it is also logged as a scalar.
    - ``train/<task>.updates``: the iterations since the start of training
      in which the task had samples, i.e. the optimizer updates that its
      losses took part in; kept and logged like ``samples_seen``. It
      counts iterations: with skipped non-finite steps or gradient
      accumulation the optimizer stepped fewer times.
    - ``train/<task>.loss_sum``: the sum of the task's (weighted) losses,
      the model's log keys ``'<task>.*'`` that contain ``'loss'``, as
      ``parse_losses`` sums them. A task absent from a step (alternating
      steps) logs nothing in that step, rather than a loss of 0.

    The logger hook writes them with the other ``train/`` scalars (without
    the ``train/`` prefix), e.g. into the ``scalars.json`` of
    ``LocalVisBackend``, so each task's curve can be plotted on its own.
    The names cannot be mistaken for the model's losses: theirs are
    ``'<task>.<key of the task model>'``, and no task model of mmpretrain,
    mmdet or mmseg has a ``loss_sum``, ``samples_seen`` or ``updates``
    loss.

    Examples:
        >>> custom_hooks = [dict(type='TaskMonitorHook')]
    """

    # After RuntimeInfoHook (VERY_HIGH) and before LoggerHook
    # (BELOW_NORMAL), which logs the scalars of the message hub.
    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not getattr(model, 'task_names', None):
            raise TypeError('TaskMonitorHook needs a model with tasks '
                            f'(MultiTaskModel), not {type(model).__name__}')
        self._tasks: List[str] = list(model.task_names)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        hub = runner.message_hub
        for task, num in self._count(data_batch).items():
            for name, step in (('samples_seen', num), ('updates', 1)):
                key = f'train/{task}.{name}'
                total = hub.get_info(key, 0) + step
                hub.update_info(key, total)
                hub.update_scalar(key, total)
        for task, loss in _task_losses(outputs or {}, self._tasks).items():
            hub.update_scalar(f'train/{task}.loss_sum', loss)

    def _count(self, data_batch: Optional[dict]) -> Dict[str, int]:
        """Samples of each task in the batch, summed over the ranks; only
        the tasks with samples."""
        samples = (data_batch or {}).get('data_samples') or []
        # A one-task model's samples may lack the task, as in the model.
        default = self._tasks[0] if len(self._tasks) == 1 else None
        counts = torch.zeros(len(self._tasks), dtype=torch.int64)
        for index, sample in enumerate(samples):
            counts[self._tasks.index(sample_task(sample, index, default))] += 1
        # Every rank calls this hook in every iteration.
        all_reduce(counts)
        return {
            task: int(num)
            for task, num in zip(self._tasks, counts.tolist()) if num > 0
        }


def _task_losses(log_vars: dict, tasks: List[str]) -> dict:
    """Sum of each task's loss entries of the model's parsed ``log_vars``;
    only the tasks that have some."""
    losses = dict()
    for key, value in log_vars.items():
        task = task_of_loss_key(key, tasks)
        if task is not None and 'loss' in key.partition('.')[2]:
            losses[task] = losses.get(task, 0.) + value
    return losses
