"""Validation and test loops with one dataloader and evaluator per task."""
import logging
from typing import Dict, Optional

from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop
# private, but the function mmengine's ValLoop/TestLoop log val losses with:
# the per-task loops must name them the same way
from mmengine.runner.loops import _parse_losses
from torch.utils.data import DataLoader

from mtl_pvt.datasets.sample_check import (check_batch, dataset_limits,
                                           renamed_error)
from mtl_pvt.evaluation import delta_m as compute_delta_m
from mtl_pvt.evaluation import parse_delta_m, relative_changes
from mtl_pvt.evaluation.delta_m import DELTA_M_KEY
from mtl_pvt.registry import LOOPS
from mtl_pvt.structures import is_task_dict, tag_task
from mtl_pvt.utils.config_check import check_task_names


class _MultiTaskLoopMixin:
    """What the val and test loops share; ``stage`` is 'val' or 'test'.

    The loop switches ``dataloader`` and ``evaluator`` to those of the
    task it runs, so that the parent's ``run_iter`` (fp16 autocast, losses,
    ``evaluator.process``) and the hooks that read ``runner.val_dataloader``
    (logger, iteration timer) see the current task's; between runs they are
    the first task's.
    """

    stage: str

    def __init__(self,
                 runner,
                 dataloader: Dict[str, dict],
                 evaluator: Dict[str, dict],
                 fp16: bool = False,
                 delta_m: Optional[dict] = None) -> None:
        self._check_tasks(runner, dataloader, evaluator, delta_m)
        self.delta_m = parse_delta_m(delta_m) if delta_m else {}
        self.dataloaders = {
            task: self._build_dataloader(runner, cfg)
            for task, cfg in dataloader.items()
        }
        self.evaluators = {
            task: runner.build_evaluator(evaluator[task])
            for task in self.dataloaders
        }
        for task, loader in self.dataloaders.items():
            self._set_dataset_meta(self.evaluators[task], loader)
        self.task: Optional[str] = None
        first = next(iter(self.dataloaders))
        super().__init__(runner, self.dataloaders[first],
                         self.evaluators[first], fp16)

    def _check_tasks(self, runner, dataloader, evaluator, delta_m) -> None:
        """Fail before building anything if the tasks do not agree."""
        given = dict(dataloader=dataloader, evaluator=evaluator)
        for name, value in given.items():
            if not is_task_dict(value):
                raise TypeError(
                    f'{type(self).__name__} takes {self.stage}_{name} as a '
                    f'dict of task name -> {name} config, e.g. dict(cls=..., '
                    f'det=...), but got {value!r:.200}')
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        check_task_names({
            'model.tasks': getattr(model, 'task_names', None),
            f'{self.stage}_dataloader': dataloader,
            f'{self.stage}_evaluator': evaluator,
            f'{self.stage}_cfg.delta_m': delta_m or None,
        })

    @staticmethod
    def _build_dataloader(runner, cfg) -> DataLoader:
        """Build as ``BaseLoop`` does, with the runner's seed."""
        # the Runner keeps its randomness config private; BaseLoop reads it
        # the same way to seed the dataloader's workers
        diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
        return runner.build_dataloader(
            cfg, seed=runner.seed, diff_rank_seed=diff_rank_seed)

    @staticmethod
    def _set_dataset_meta(evaluator: Evaluator, loader: DataLoader) -> None:
        """Give the evaluator its dataset's metainfo, as mmengine does."""
        if hasattr(loader.dataset, 'metainfo'):
            evaluator.dataset_meta = loader.dataset.metainfo
        else:
            print_log(
                f'Dataset {type(loader.dataset).__name__} has no metainfo. '
                '``dataset_meta`` in its evaluator will be None.',
                logger='current',
                level=logging.WARNING)

    def _use_task(self, task: Optional[str]) -> None:
        """Point ``dataloader``, ``evaluator`` and the visualizer's
        ``dataset_meta`` at ``task``, or at the first task if None."""
        self.task = task
        task = task or next(iter(self.dataloaders))
        self.dataloader = self.dataloaders[task]
        self.evaluator = self.evaluators[task]
        metainfo = getattr(self.dataloader.dataset, 'metainfo', None)
        if metainfo is not None:
            self.runner.visualizer.dataset_meta = metainfo

    def run(self) -> dict:
        """Evaluate every task in turn, between one ``before_<stage>_epoch``
        and one ``after_<stage>_epoch``.

        Returns:
            dict: Each task's metrics keyed ``'<task>/<metric>'``, and
            ``'mtl/delta_m'`` if the loop has ``delta_m`` references.
        """
        self.runner.call_hook(f'before_{self.stage}')
        self.runner.call_hook(f'before_{self.stage}_epoch')
        self.runner.model.eval()
        metrics = dict()
        for task in self.dataloaders:
            metrics.update(self._run_task(task))
        self._use_task(None)
        silent = [t for t in self.delta_m if not _task_has_metrics(metrics, t)]
        if silent:
            # e.g. mmdet's CocoMetric returns {} when a barely trained
            # detector keeps no box: no delta-m this time, but no crash.
            print_log(
                f'{DELTA_M_KEY} is skipped: task(s) {silent} returned no '
                'metrics.',
                logger='current',
                level=logging.WARNING)
        elif self.delta_m:
            metrics[DELTA_M_KEY] = compute_delta_m(metrics, self.delta_m)
        self.runner.call_hook(f'after_{self.stage}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{self.stage}')
        return metrics

    def _run_task(self, task: str) -> dict:
        """Run and evaluate one task; its metrics prefixed ``'<task>/'``."""
        self._use_task(task)
        losses = getattr(self, f'{self.stage}_loss')
        losses.clear()
        # labels outside the class range would shift the metric silently
        limits = dataset_limits(self.dataloader.dataset)
        for idx, data_batch in enumerate(self._batches(task)):
            check_batch(data_batch, task, limits)
            self.run_iter(idx, tag_task(data_batch, task, required=False))
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if losses:
            metrics.update(_parse_losses(losses, self.stage))
        metrics = {'/'.join((task, k)): v for k, v in metrics.items()}
        if task in self.delta_m and metrics:
            # A mistyped metric fails now, not after the other tasks ran.
            relative_changes(metrics, {task: self.delta_m[task]})
        return metrics

    def _batches(self, task: str):
        """The task's batches; a loading error names the task."""
        iterator = iter(self.dataloader)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except Exception as e:
                raise renamed_error(
                    e, f'task {task!r} ({self.stage} data): '
                    f'{type(e).__name__}: {e}') from e
            yield batch


def _task_has_metrics(metrics: dict, task: str) -> bool:
    return any(key.startswith(task + '/') for key in metrics)


@LOOPS.register_module()
class MultiTaskValLoop(_MultiTaskLoopMixin, ValLoop):
    """Validate each task on its own dataloader with its own evaluator.

    The tasks run one after the other, in the order of ``val_dataloader``,
    each with mmengine's hooks around every batch (``batch_idx`` counts
    the task's batches); ``before_val_epoch`` and ``after_val_epoch`` are
    called once, the latter with the metrics of all tasks.

    Examples:
        >>> val_dataloader = dict(cls=cls_val_dataloader,
        ...                       det=det_val_dataloader)
        >>> val_evaluator = dict(cls=dict(type='mmpretrain.Accuracy'),
        ...                      det=dict(type='mmdet.CocoMetric', ...))
        >>> val_cfg = dict(
        ...     type='MultiTaskValLoop',
        ...     delta_m=dict(cls=dict(metric='accuracy/top1', stl=82.0),
        ...                  det=dict(metric='coco/bbox_mAP', stl=0.446)))
        >>> # metrics: 'cls/accuracy/top1', 'det/coco/bbox_mAP', ...,
        >>> # 'mtl/delta_m'; e.g. CheckpointHook(save_best='mtl/delta_m',
        >>> # rule='greater')

    Attributes:
        dataloaders (dict[str, DataLoader]): The dataloader of each task.
        evaluators (dict[str, Evaluator]): The evaluator of each task.
        dataloader (DataLoader): The running task's dataloader, else the
            first task's (``runner.val_dataloader``).
        evaluator (Evaluator): Likewise (``runner.val_evaluator``).
        task (str | None): The running task.

    Args:
        runner (Runner): The runner.
        dataloader (dict): Task name -> dataloader (config) of a standard
            single-task dataset, whose samples need no task in their
            metainfo: the loop adds it. The runner passes
            ``val_dataloader``.
        evaluator (dict): Task name -> evaluator (config), e.g. the
            task's metric config. The runner passes ``val_evaluator``.
        fp16 (bool): Whether to run the model under autocast. Defaults to
            False.
        delta_m (dict, optional): The single-task references of each
            task's main metric (see :func:`mtl_pvt.evaluation.delta_m`),
            for ``'mtl/delta_m'``. Defaults to None.

    Raises:
        TypeError: ``dataloader`` or ``evaluator`` is not a dict of tasks.
        ValueError: The model's tasks, the dataloaders', the evaluators'
            or ``delta_m``'s differ, or a ``delta_m`` reference is invalid.
        KeyError: A ``delta_m`` metric is not among its task's results
            (raised after that task's evaluation).
    """

    stage = 'val'


@LOOPS.register_module()
class MultiTaskTestLoop(_MultiTaskLoopMixin, TestLoop):
    """Test each task on its own dataloader with its own evaluator.

    As :class:`MultiTaskValLoop`, with the test hooks, ``test_dataloader``
    and ``test_evaluator``.
    """

    stage = 'test'
