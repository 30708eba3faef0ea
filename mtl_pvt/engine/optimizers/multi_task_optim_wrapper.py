"""An optimiser wrapper that balances the tasks of a multi-task step."""
import math
from contextlib import ExitStack, contextmanager
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper

from mtl_pvt.models.task_parameters import (TaskParameters, assign_flat_grad,
                                            task_parameters)
from mtl_pvt.registry import MODELS, OPTIM_WRAPPERS, TASK_UTILS
from .gradient_statistics import gradient_statistics, last_copy_norms
from .task_clipping import clip_per_task
from .task_rows import TaskRows, rank_mean
from .wrapper_state import MultiTaskWrapperState


@OPTIM_WRAPPERS.register_module()
class MultiTaskOptimWrapper(MultiTaskWrapperState, OptimWrapper):
    """``OptimWrapper`` that weights and/or aggregates per-task gradients.

    ``MultiTaskModel.train_step`` (also under DDP, whose wrapper hands it
    the step) calls :meth:`update_tasks` with a function that gives the
    losses of a group of tasks: all at once for a joint step, one task at
    a time with ``task_by_task``; the per-task losses reach
    :meth:`update_params` explicitly, which then:

    - **loss weighting** (``weighting``, e.g. ``UncertaintyWeighting``,
      ``FAMO``): weights ``w_t`` from the step's losses (averaged over the
      ranks) and the method's state; the update is that of
      ``sum_t w_t L_t``;
    - **gradient aggregation** (``aggregator``, e.g. ``PCGrad``,
      ``NashMTL``): each task's loss is backpropagated on its own. The
      tasks run on their own images, so their graphs are disjoint and the
      T backward passes cost one joint backward; each task's gradient of
      the shared stage copies is kept as one row of ``G``. Every *unit* of
      shared copies (see ``aggregate_per``) gets ``aggregator(G)`` over the
      tasks that share it; task-specific parameters keep their own task's
      gradient, unchanged.

    Gradient clipping (``clip_grad``), ``accumulative_counts`` and the
    parameter schedulers act on the combined gradient exactly as in
    ``OptimWrapper``. Under DDP the per-task gradients are averaged over
    the ranks *before* the aggregation (the aggregators are not linear), in
    one all-reduce that replaces DDP's own (the forward runs under
    ``no_sync``), so N processes make the update of one process on the
    union of their batches. With only a weighting, steps that need no
    per-task gradient keep DDP's own all-reduce.

    Call flow of one optimizer update::

        update_tasks(losses_of, tasks)      # MultiTaskModel.train_step
          joint: update_params(total, task_losses=losses_of(tasks))
          task by task: for t: backward_task(t, losses_of([t])[t])
                        finish_task_by_task({t: L_t})
        update_params(total, task_losses={t: L_t})
          weights = weighting.weights(mean over ranks of L_t)
          per-task path (aggregator, grad-norm methods, statistics steps,
          task_clip_grad): for t: backward(w_t L_t) -> row t of each unit
          else: backward(sum_t w_t L_t)
          -> [all-reduce rows + task-specific grads] -> [unscale (AMP)]
          -> [per-task clip] -> aggregator(rows) or sum -> .grad
          -> weighting.update(...) -> step() (clip, optimizer) -> zero_grad

    Examples:
        >>> optim_wrapper = dict(
        ...     type='MultiTaskOptimWrapper',
        ...     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
        ...     clip_grad=dict(max_norm=35, norm_type=2),
        ...     aggregator=dict(type='PCGrad'))       # or
        ...     # weighting=dict(type='UncertaintyWeighting'))

    Args:
        optimizer (Optimizer): The optimizer.
        weighting (dict, optional): Config of a loss weighting of
            ``mtl_pvt.models.loss_weighting`` (registry ``MODELS``); its
            ``tasks`` are the model's. Defaults to None (the model's static
            ``loss_weights`` only).
        aggregator (dict, optional): Config of a gradient aggregator of
            ``TASK_UTILS`` (``Mean``, ``Sum``, ``PCGrad``, ``CAGrad``,
            ``MGDA``, ``IMTLG``, ``NashMTL``, ``AlignedMTL``, ``UPGrad``).
            Defaults to None (the sum of the task gradients).
        aggregate_per (str): ``'task_set'``: shared stage copies with the
            same tasks are aggregated together (full sharing: one
            aggregation over the whole shared backbone, as the methods are
            published); ``'stage'``: each shared copy on its own. Defaults
            to ``'task_set'``.
        task_by_task (bool): Run forward and backward one task at a time
            within the step (``MultiTaskModel.train_step``), freeing each
            task's activations before the next: the same update, the
            memory of the largest task. Defaults to False.
        task_clip_grad (dict, optional): ``dict(max_norm=..., norm_type=2)``
            clips each task's gradient (its own parameters and its rows of
            the shared ones) by its own norm before the tasks are combined.
            Defaults to None.
        stats_interval (int): Every this many updates, log per task its
            gradient norm on each shared stage copy and, per copy and task
            pair, the cosine of their gradients (``train/mtl.*`` scalars).
            0 turns it off. Defaults to 50.
        **kwargs: ``accumulative_counts`` and ``clip_grad`` of
            ``OptimWrapper``.
    """

    def __init__(self,
                 optimizer: torch.optim.Optimizer,
                 weighting: Optional[dict] = None,
                 aggregator: Optional[dict] = None,
                 aggregate_per: str = 'task_set',
                 task_by_task: bool = False,
                 task_clip_grad: Optional[dict] = None,
                 stats_interval: int = 50,
                 **kwargs):
        super().__init__(optimizer=optimizer, **kwargs)
        if aggregate_per not in ('task_set', 'stage'):
            raise ValueError("aggregate_per must be 'task_set' or 'stage', "
                             f'but got {aggregate_per!r}')
        if not isinstance(stats_interval, int) or stats_interval < 0:
            raise ValueError('stats_interval must be an int >= 0, but got '
                             f'{stats_interval!r}')
        if task_clip_grad is not None and not task_clip_grad.get(
                'max_norm', 0) > 0:
            raise ValueError('task_clip_grad needs max_norm > 0, but got '
                             f'{task_clip_grad!r}')
        if task_by_task and weighting is not None and \
                self._accumulative_counts > 1:
            raise ValueError(
                'task_by_task with a loss weighting needs '
                'accumulative_counts=1: the weights are known only after '
                'the last task of a step, and are applied to its gradients')
        self.weighting_cfg = weighting
        self.aggregator = TASK_UTILS.build(aggregator) if aggregator else None
        self.aggregate_per = aggregate_per
        self.task_by_task = task_by_task
        self.task_clip_grad = dict(task_clip_grad or {}) or None
        self.stats_interval = stats_interval
        self.weighting: Optional[nn.Module] = None
        self.layout: Optional[TaskParameters] = None
        self.nonfinite = 'raise'
        self.skipped_steps = 0
        self._pending_state: Optional[dict] = None
        self._per_task: Optional[bool] = None
        self.rows: Optional[TaskRows] = None
        self._micro_losses: List[Dict[str, torch.Tensor]] = []
        self._updates = 0
        self._after_step_done = True

    # ---------------------------------------------------------------- set-up
    def bind(self, model: nn.Module) -> None:
        """Learn the model's tasks and shared parameters (once)."""
        if self.layout is not None:
            return
        model = model.module if is_model_wrapper(model) else model
        self.layout = task_parameters(model, self.aggregate_per)
        self.rows = TaskRows(self.layout)
        self.nonfinite = getattr(model, 'nonfinite_losses', 'raise')
        if self.weighting_cfg is not None:
            cfg = dict(self.weighting_cfg)
            if 'tasks' in cfg and list(cfg['tasks']) != self.layout.tasks:
                raise ValueError(
                    f"the weighting names tasks {list(cfg['tasks'])}, but "
                    f'the model has tasks {self.layout.tasks}')
            cfg['tasks'] = self.layout.tasks
            self.weighting = MODELS.build(cfg)
            device = next(model.parameters()).device
            self.weighting.to(device)
            if getattr(self.weighting, 'requires_grad_norms', False):
                self.layout.last_shared_copy()  # raises without one
        if self._pending_state is not None:
            self._load_mtl_state(self._pending_state)
            self._pending_state = None

    @property
    def needs_per_task_grads(self) -> bool:
        """Whether every update keeps the tasks' gradients apart."""
        return (self.aggregator is not None or self.task_clip_grad is not None
                or getattr(self.weighting, 'requires_grad_norms', False))

    def _stats_step(self) -> bool:
        return self.stats_interval > 0 and \
            self._updates % self.stats_interval == 0 and \
            bool(self.layout and self.layout.shared_copies)

    def _plan(self) -> bool:
        """Whether this micro-step runs per task (and reduces its own
        gradients under DDP)."""
        return self.needs_per_task_grads or self._stats_step() or \
            self.task_by_task

    @contextmanager
    def optim_context(self, model: nn.Module):
        """The parent's context (AMP, accumulation), plus ``no_sync`` when
        this step all-reduces its per-task gradients itself."""
        self.bind(model)
        self._per_task = self._plan()
        with ExitStack() as stack:
            if self._per_task and get_world_size() > 1 and hasattr(
                    model, 'no_sync'):
                stack.enter_context(model.no_sync())
            stack.enter_context(super().optim_context(model))
            yield

    # ------------------------------------------------------------- one step
    def update_tasks(self,
                     losses_of: Callable[[List[str]], Dict[str, torch.Tensor]],
                     tasks: Sequence[str],
                     step_kwargs: Optional[Dict] = None,
                     zero_kwargs: Optional[Dict] = None) -> None:
        """One training step of ``tasks`` (``MultiTaskModel.train_step``).

        Asks ``losses_of`` for the tasks' losses: of all tasks at once, or,
        with ``task_by_task``, of one task at a time, each backpropagated
        before the next task's forward; then weights, aggregates and
        updates as :meth:`update_params`.

        Args:
            losses_of (Callable): Task list -> each task's summed loss
                (with its graph).
            tasks (Sequence[str]): The step's tasks.
            step_kwargs (dict, optional): Arguments of ``optimizer.step``.
            zero_kwargs (dict, optional): Arguments of
                ``optimizer.zero_grad``.
        """
        if not self.task_by_task:
            task_losses = losses_of(list(tasks))
            return self.update_params(
                sum(v.detach() for v in task_losses.values()), step_kwargs,
                zero_kwargs, task_losses)
        detached = {}
        for task in tasks:
            loss = losses_of([task])[task]
            self.backward_task(task, loss)
            # keep nothing of the graph: the next task's forward reuses
            # its memory
            detached[task] = loss.detach()
            del loss
        self.finish_task_by_task(detached, step_kwargs, zero_kwargs)

    def update_params(
            self,
            loss: torch.Tensor,
            step_kwargs: Optional[Dict] = None,
            zero_kwargs: Optional[Dict] = None,
            task_losses: Optional[Dict[str, torch.Tensor]] = None) -> None:
        """Backward the step's per-task losses; update when due.

        Args:
            loss (Tensor): The total loss (unused: the tasks' losses are
                weighted and backpropagated).
            step_kwargs (dict, optional): Arguments of ``optimizer.step``.
            zero_kwargs (dict, optional): Arguments of
                ``optimizer.zero_grad``.
            task_losses (dict[str, Tensor]): Each task's summed loss, with
                its graph (``MultiTaskModel.train_step`` passes them).
        """
        if not isinstance(task_losses, dict) or not task_losses:
            raise TypeError(
                'MultiTaskOptimWrapper.update_params needs the per-task '
                'losses (task_losses=...), which MultiTaskModel.train_step '
                f'passes through update_tasks; got {type(task_losses)}')
        if self.layout is None:
            raise RuntimeError('MultiTaskOptimWrapper.update_params before '
                               'optim_context(model) bound a model')
        self._check_after_step()
        per_task = self._plan() if self._per_task is None else self._per_task
        self._per_task = None
        values = self._check_and_reduce(task_losses)
        if values is None:  # a non-finite step, skipped
            return self._skip(zero_kwargs)
        weights = self._weights(values)
        if per_task:
            for task, task_loss in task_losses.items():
                self.backward_task(task, task_loss * weights[task])
        else:
            total = sum(weights[t] * task_losses[t] for t in task_losses)
            self._raw_backward(self.scale_loss(total))
        self._finish_micro_step(values, per_task, step_kwargs, zero_kwargs)

    # ------------------------------------------------- one task at a time
    def backward_task(self, task: str, loss: torch.Tensor) -> None:
        """Backpropagate one task's loss; keep its rows when needed.

        Args:
            task (str): The task.
            loss (Tensor): Its loss, before the accumulation factor.
        """
        self._raw_backward(self.scale_loss(loss))
        if self.needs_per_task_grads or self._stats_step() or (
                self.task_by_task and self.weighting is not None):
            self._harvest(task)

    def finish_task_by_task(self,
                            task_losses: Dict[str, torch.Tensor],
                            step_kwargs: Optional[Dict] = None,
                            zero_kwargs: Optional[Dict] = None) -> None:
        """End a step whose tasks :meth:`backward_task` ran one by one.

        The weighting sees all the step's losses only now: its weights
        multiply each task's (unweighted) gradients here.

        Args:
            task_losses (dict[str, Tensor]): The step's per-task losses.
        """
        self._check_after_step()
        values = self._check_and_reduce(task_losses)
        if values is None:
            return self._skip(zero_kwargs)
        weights = self._weights(values)
        for task, w in weights.items():
            if w != 1.:
                self.rows.scale_task(task, w)
        self._finish_micro_step(values, True, step_kwargs, zero_kwargs)

    def _harvest(self, task: str) -> None:
        """Move the task's gradient of the shared copies into its rows."""
        self.rows.harvest(task)

    def _finish_micro_step(self, values, per_task, step_kwargs, zero_kwargs):
        self._inner_count += 1
        self._micro_losses.append(values)
        if self.should_update():
            self._update(per_task, step_kwargs or {}, zero_kwargs or {})

    def _raw_backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()`` (scaled under AMP), without counting."""
        loss.backward()

    def _grad_scale(self) -> float:
        return 1.

    def _weights(self, values: Dict[str, torch.Tensor]) -> Dict[str, float]:
        if self.weighting is None:
            return {task: 1. for task in values}
        weights = {
            task: float(w)
            for task, w in self.weighting.weights(values).items()
        }
        bad = {t: w for t, w in weights.items() if not math.isfinite(w)}
        if bad:
            self._nonfinite(f'loss weight(s) {bad}')
        for task, w in weights.items():
            self.message_hub.update_scalar(f'train/mtl.weight.{task}', w)
        return weights

    def _check_after_step(self) -> None:
        if not self._after_step_done:
            raise RuntimeError(
                f'{type(self.weighting).__name__} needs the losses after '
                'each step (an extra no-grad forward): add '
                "custom_hooks=[dict(type='LossWeightingHook')] to the config")

    def _check_and_reduce(self, task_losses):
        """Rank-averaged detached losses, or None for a step to skip."""
        values = rank_mean(task_losses)
        bad = [t for t, v in values.items() if not math.isfinite(float(v))]
        if bad:
            self._nonfinite(f'loss of task(s) {bad}')
            return None
        return values

    def _nonfinite(self, what: str) -> None:
        it = self.message_hub.get_info('iter', -1) + 1  # 1-based
        msg = f'non-finite {what} at iteration {it}'
        if self.nonfinite != 'skip':
            raise FloatingPointError(
                f'{msg}: training stopped before the optimizer step, so no '
                'checkpoint holds non-finite weights (set '
                "model.nonfinite_losses='skip' to skip such steps)")
        self.message_hub.update_scalar('train/mtl.skipped_steps',
                                       self.skipped_steps + 1)

    def _skip(self, zero_kwargs, counted: bool = False) -> None:
        """Drop this update's gradients (a non-finite step)."""
        self.skipped_steps += 1
        if not counted:
            self._inner_count += 1
        self.rows.clear()
        self._micro_losses.clear()
        self.zero_grad(**(zero_kwargs or {}))

    # ---------------------------------------------------------- the update
    def _update(self, per_task: bool, step_kwargs, zero_kwargs) -> None:
        losses = self._mean_losses()
        grad_norms = None
        if per_task:
            present = sorted({t
                              for v in self._micro_losses
                              for t in v},
                             key=self.layout.tasks.index)
            if get_world_size() > 1:
                self.rows.all_reduce(set(present))
            scale = self._grad_scale()
            if scale != 1.:
                self.rows.unscale(scale)
            bad = self.rows.nonfinite_tasks(present)
            if bad and scale == 1.:
                self._nonfinite(f'gradient of task(s) {bad} on the shared '
                                'stages')
                return self._skip(zero_kwargs, counted=True)
            if bad:
                # AMP: an overflow of the scaled gradients. The rows' sum
                # (non-finite too) goes to .grad, unaggregated, so that
                # the loss scaler skips the step and lowers its scale.
                self._combine(present, scale, overflow=True)
            else:
                if self._stats_step():
                    self._log(gradient_statistics(self.rows, present))
                if self.task_clip_grad is not None:
                    self._clip_per_task(present, scale)
                if getattr(self.weighting, 'requires_grad_norms', False):
                    grad_norms = last_copy_norms(self.rows, present)
                self._combine(present, scale)
        if self.weighting is not None and self._step_is_due():
            self.weighting.update(losses, grad_norms)
            for key, value in self.weighting.log_vars().items():
                self.message_hub.update_scalar(f'train/mtl.{key}',
                                               float(value))
            self._after_step_done = not getattr(
                self.weighting, 'requires_losses_after_step', False)
        self._updates += 1
        self.rows.clear()
        self._micro_losses.clear()
        self.step(**step_kwargs)
        self.zero_grad(**zero_kwargs)

    def _mean_losses(self) -> Dict[str, torch.Tensor]:
        sums: Dict[str, List[torch.Tensor]] = {}
        for values in self._micro_losses:
            for task, v in values.items():
                sums.setdefault(task, []).append(v)
        return {t: torch.stack(v).mean() for t, v in sums.items()}

    def _step_is_due(self) -> bool:
        """Whether :meth:`step` will update the weights (the AMP variant
        says False for an overflow its loss scaler will skip)."""
        return True

    def _combine(self,
                 present: List[str],
                 scale: float,
                 overflow: bool = False) -> None:
        """Each unit's rows -> one gradient, written into ``.grad`` (their
        plain sum for an ``overflow`` step, which is not taken)."""
        for index, unit in enumerate(self.layout.units):
            tasks = [t for t in unit.tasks if t in present]
            if not tasks:
                continue
            if index not in self.rows:
                continue
            G = self.rows.of_unit(index, present)
            if self.aggregator is not None and not overflow:
                if len(tasks) < len(unit.tasks):
                    raise ValueError(
                        f'the aggregator needs every task of a shared stage '
                        f'in each update, but only {tasks} of '
                        f'{list(unit.tasks)} had samples: aggregators need '
                        "joint steps (batch_sampler mode='joint'); with "
                        'alternating steps use a loss weighting')
                grad = self.aggregator(G)
            else:
                grad = G.sum(0)
            assign_flat_grad(unit.params,
                             grad * scale if scale != 1. else grad)

    def _clip_per_task(self, present: List[str], scale: float) -> None:
        """Clip each task's whole gradient by its own norm
        (:func:`~.task_clipping.clip_per_task`); log the norms."""
        norms = clip_per_task(self.rows, present,
                              float(self.task_clip_grad['max_norm']),
                              float(self.task_clip_grad.get('norm_type', 2)),
                              scale)
        self._log({f'grad_norm.{task}': norm for task, norm in norms.items()})

    def _log(self, scalars: Dict[str, float]) -> None:
        for key, value in scalars.items():
            self.message_hub.update_scalar(f'train/mtl.{key}', value)

    # ------------------------------------------------- FAMO-like methods
    @property
    def awaits_losses_after_step(self) -> bool:
        """Whether an update just happened whose weighting wants the
        batch's losses after it (FAMO's official variant)."""
        return not self._after_step_done

    def update_after_step(self, task_losses: Dict[str, torch.Tensor]) -> None:
        """Give the weighting the same batch's losses after the step.

        Called by ``LossWeightingHook`` for weightings with
        ``requires_losses_after_step`` (FAMO's official variant).
        """
        if not self.awaits_losses_after_step:
            return
        self.weighting.update_after_step(rank_mean(task_losses))
        self._after_step_done = True
