"""Per-stage inter-task affinity measured during training."""
import os.path as osp
from typing import Optional, Union

import torch
from mmengine.dist import all_reduce, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mtl_pvt.registry import HOOKS


@HOOKS.register_module()
class TaskAffinityHook(Hook):
    """Every ``interval`` iterations, a lookahead measurement of how much
    each task's update of each shared stage helps every other task.

    Before the training step of iterations ``0, interval, 2 * interval...``
    it runs :func:`mtl_pvt.analysis.affinity.measure_affinity` on that
    step's batch at the current weights: per shared stage copy and for the
    whole shared backbone, ``Z(i -> j) = 1 - L_j(after) / L_j(before)``
    after one SGD step along task ``i``'s gradient, with the gradient
    cosines and norms per copy. The measurement leaves the weights, the
    optimizer, the ``.grad`` buffers, BN statistics and the random streams
    of training as they were, so a run with the hook trains exactly as one
    without it. Under DDP each rank measures its own batch and the values
    are averaged over ranks.

    Each measurement is appended to ``<log_dir>/affinity.json`` (written
    atomically by rank 0: the tasks, the sharing, every record) and sent to
    the visualizer as ``affinity/<copy>/<i>-><j>`` and
    ``grad_cos/<copy>/<i>-<j>`` scalars at its step.
    ``tools/analysis_tools/suggest_branching.py`` turns the averages into a
    ``stage_groups`` tree, ``tools/analysis_tools/mtl_report.py`` plots
    them.

    Examples:
        >>> custom_hooks = [dict(type='TaskAffinityHook', interval=50)]

    Args:
        interval (int): Iterations between measurements. Defaults to 50.
        lr (float, optional): Learning rate of the lookahead step; None:
            the current one of each parameter's optimizer group. Defaults
            to None.
        max_norm (float | str, optional): Clip each task's lookahead
            gradient to this norm; ``'optimizer'``: the ``max_norm`` of the
            optimiser wrapper's ``clip_grad`` (none without one), so that
            the lookahead steps as far as training does; None: never clip.
            Defaults to ``'optimizer'``.
        seed (int): Seed set before every forward of a measurement.
            Defaults to 0.
        begin (int): First iteration to measure. Defaults to 0.
    """

    priority = 'NORMAL'

    def __init__(self,
                 interval: int = 50,
                 lr: Optional[float] = None,
                 max_norm: Union[float, str, None] = 'optimizer',
                 seed: int = 0,
                 begin: int = 0):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(
                f'interval must be a positive int, but got {interval!r}')
        if lr is not None and not lr > 0:
            raise ValueError(f'lr must be > 0 or None, but got {lr!r}')
        if not (max_norm is None or max_norm == 'optimizer'
                or isinstance(max_norm, (int, float)) and max_norm > 0):
            raise ValueError("max_norm must be > 0, 'optimizer' or None, "
                             f'but got {max_norm!r}')
        self.interval = interval
        self.lr = lr
        self.max_norm = max_norm
        self.seed = seed
        self.begin = begin
        self.records = []

    def before_train(self, runner) -> None:
        self.records = []
        self._skipped = False
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        groups = getattr(
            getattr(model, 'backbone', None), 'stage_groups', None)
        if groups is None:
            raise TypeError(
                'TaskAffinityHook needs a MultiTaskModel on a '
                'SharedBackbone (SharedPVTv2, SharedResNet, SharedSwin), not '
                f'{type(model).__name__}')
        self.enabled = any(len(g) > 1 for stage in groups for g in stage)
        if not self.enabled:
            runner.logger.warning(
                'TaskAffinityHook: no backbone stage is shared by two tasks '
                f'(stage_groups {groups}), so there is no affinity to '
                'measure; the hook does nothing in this run')

    def _lr_of(self, runner):
        if self.lr is not None:
            return lambda param: self.lr
        lrs = {}
        optimizer = runner.optim_wrapper.optimizer
        for group in optimizer.param_groups:
            for param in group['params']:
                lrs[param] = group['lr']

        def lr_of(param):
            if param not in lrs:
                raise KeyError('a shared backbone parameter is in no '
                               'optimizer group: give TaskAffinityHook an '
                               'explicit lr')
            return lrs[param]

        return lr_of

    def _max_norm(self, runner) -> Optional[float]:
        if self.max_norm != 'optimizer':
            return self.max_norm
        wrapper = runner.optim_wrapper
        kwargs = getattr(wrapper, 'clip_grad_kwargs', None) or {}
        if getattr(wrapper, 'clip_func', None) is torch.nn.utils.\
                clip_grad_norm_ and 'max_norm' in kwargs:
            return float(kwargs['max_norm'])
        return None

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        step = runner.iter
        if not getattr(self, 'enabled', True) or data_batch is None or \
                step < self.begin or (step - self.begin) % self.interval:
            return
        # imported here: the analysis package imports the models
        from mtl_pvt.analysis.affinity import (AFFINITY_FILE, NotEnoughTasks,
                                               measure_affinity,
                                               write_json_atomic)
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        try:
            record = measure_affinity(model, data_batch, self._lr_of(runner),
                                      self.seed, self._max_norm(runner))
        except NotEnoughTasks as e:
            if not self._skipped:
                runner.logger.warning(
                    f'TaskAffinityHook: iteration {step} not measured: {e}.'
                    ' Each measurement needs one batch with two tasks or '
                    'more (a joint batch sampler); such steps are skipped')
            self._skipped = True
            return
        record = dict(step=step, **_rank_mean(record))
        self.records.append(record)
        scalars = {
            f'affinity/{copy}/{i}->{j}': z
            for copy, matrix in record['affinity'].items()
            for i, row in matrix.items()
            for j, z in row.items()
        }
        scalars.update({
            f'grad_cos/{copy}/{pair}': c
            for copy, pairs in record['grad_cos'].items()
            for pair, c in pairs.items()
        })
        runner.visualizer.add_scalars(scalars, step=step)
        whole = record['affinity']['backbone']
        runner.logger.info(
            f'task affinity at iter {step} (whole backbone, i->j): ' +
            ', '.join(f'{i}->{j} {z:+.2e}' for i, row in whole.items()
                      for j, z in row.items() if i != j))
        if is_main_process():
            backbone = model.backbone
            write_json_atomic(
                dict(
                    tasks=list(model.task_names),
                    stage_groups=backbone.stage_groups,
                    interval=self.interval,
                    lr=self.lr,
                    max_norm=self._max_norm(runner),
                    records=self.records),
                osp.join(runner.log_dir, AFFINITY_FILE))


def _rank_mean(record: dict) -> dict:
    """Every number of ``record`` averaged over the ranks (a no-op when
    not distributed)."""
    flat = []

    def collect(value):
        if isinstance(value, dict):
            for v in value.values():
                collect(v)
        else:
            flat.append(float(value))

    collect(record)
    values = torch.tensor(flat, dtype=torch.float64)
    all_reduce(values, op='mean')
    values = iter(values.tolist())

    def rebuild(value):
        if isinstance(value, dict):
            return {k: rebuild(v) for k, v in value.items()}
        return next(values)

    return rebuild(record)
