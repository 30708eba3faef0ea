"""The interface of the loss weightings and the helpers they share."""
import copy
import math
from collections import OrderedDict
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Union)

import torch
from mmengine.model import BaseModule
from mmengine.registry import OPTIMIZERS
from torch import Tensor, nn

OptimizerCfg = Union[dict, Callable[[List[nn.Parameter]],
                                    torch.optim.Optimizer]]


class BaseLossWeighting(BaseModule):
    """A scheme that weighs the task losses of a multi-task step.

    ``MultiTaskOptimWrapper`` uses a weighting as follows, once per
    optimizer update::

        losses = rank-averaged, detached task losses of the step
        w = weighting.weights(losses)       # pure
        backward of sum_t w_t * L_t         # the network's own backward
        weighting.update(losses[, grad_norms])
        optimizer step
        weighting.update_after_step(losses after the step)  # only when
                                            # requires_losses_after_step

    A weighting never touches the network: it sees detached 0-dim losses
    (and, for ``requires_grad_norms``, gradient norms) and returns detached
    0-dim weights. The learned quantities of a weighting (uncertainties,
    logits, GradNorm weights) are its own parameters, stepped by its own
    small optimizer inside :meth:`update`, never by the model's optimizer.

    The task set of a step may be any non-empty subset of :attr:`tasks`
    (in alternating-task steps only one task is present). How a method
    treats the absent tasks is documented in each subclass.

    State (parameters, the own optimizer's state, histories, generator
    state, counters) is part of :meth:`state_dict`: buffers and
    parameters directly, python and optimizer state through
    :meth:`get_extra_state` / :meth:`set_extra_state`. A weighting
    restored from a state dict continues exactly like the uninterrupted
    one.

    Distributed training: every computation is deterministic given the
    state and the inputs. The caller averages the losses (and the
    gradients behind ``grad_norms``) over the ranks before calling, so
    all ranks hold identical weightings without any communication here.

    Args:
        tasks (Sequence[str]): Task names, in the model's order. Given by
            the optimizer wrapper (the model's ``task_names``); configs do
            not list them.
        init_cfg (dict, optional): Initialisation config of
            ``BaseModule``. Defaults to None.

    Attributes:
        requires_grad_norms (bool): Whether :meth:`update` needs the
            per-task gradient norms of the weighted losses.
        requires_losses_after_step (bool): Whether the caller must pass
            the losses of a no-grad forward of the same batch after the
            optimizer step to :meth:`update_after_step`.
    """

    requires_grad_norms: bool = False
    requires_losses_after_step: bool = False

    def __init__(self,
                 tasks: Sequence[str],
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(tasks, str):
            raise TypeError(
                f'tasks must be a sequence of task names, not the string '
                f'{tasks!r}')
        tasks = tuple(tasks)
        if not tasks:
            raise ValueError('a loss weighting needs at least one task')
        for task in tasks:
            if not isinstance(task, str) or not task:
                raise TypeError(f'task names must be non-empty strings, got '
                                f'{task!r}')
        if len(set(tasks)) != len(tasks):
            raise ValueError(f'duplicate task names in {list(tasks)}')
        self.tasks = tasks
        self.num_tasks = len(tasks)
        self._index = {task: i for i, task in enumerate(tasks)}

    # ------------------------------------------------------ the interface
    def weights(self, losses: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        """The weight of each task present in this step.

        Args:
            losses (Mapping[str, Tensor]): Detached 0-dim losses of the
                present tasks (a non-empty subset of :attr:`tasks`),
                already averaged over the ranks.

        Returns:
            dict[str, Tensor]: Detached 0-dim weights, same keys, on the
            device of the losses. Pure: the state does not change.

        Raises:
            ValueError: On an unknown task name or a non-finite loss.
        """
        raise NotImplementedError

    def update(self,
               losses: Mapping[str, Tensor],
               grad_norms: Optional[Mapping[str, Tensor]] = None) -> None:
        """Advance the state after the step's backward.

        Called once per optimizer update, with the losses given to
        :meth:`weights`. The base implementation only checks the input
        (stateless weightings).

        Args:
            losses (Mapping[str, Tensor]): As in :meth:`weights`.
            grad_norms (Mapping[str, Tensor], optional): Per present task,
                the L2 norm of the gradient of its *weighted* loss w.r.t.
                the last shared stage (rank-averaged gradient). Given only
                when :attr:`requires_grad_norms`.
        """
        self._check_losses(losses)

    def update_after_step(self, losses: Mapping[str, Tensor]) -> None:
        """Take the same batch's losses after the optimizer step.

        Only for weightings with :attr:`requires_losses_after_step`.

        Args:
            losses (Mapping[str, Tensor]): Detached, rank-averaged losses
                of a no-grad forward of the step's batch after the step.
        """
        raise RuntimeError(
            f'{type(self).__name__} does not take the losses after the '
            'step (requires_losses_after_step is False)')

    def log_vars(self) -> Dict[str, float]:
        """Extra scalars to log; no key contains ``'loss'``."""
        return {}

    def forward(self, losses: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        """Same as :meth:`weights`."""
        return self.weights(losses)

    def extra_repr(self) -> str:
        return f'tasks={list(self.tasks)}'

    # --------------------------------------------------------- helpers
    @property
    def _device(self) -> torch.device:
        """Where the state lives (the CPU for a weighting without any)."""
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device('cpu')

    def _check_losses(self,
                      losses: Mapping[str, Any],
                      what: str = 'loss') -> 'OrderedDict[str, Tensor]':
        """Validate per-task values; return them in task order.

        Every value becomes a detached 0-dim tensor of a floating dtype
        (at least float32), on the device of the weighting's state.

        Raises:
            ValueError: On an empty mapping, an unknown task, a value with
                more than one element or a non-finite value (naming the
                task).
        """
        if not isinstance(losses, Mapping):
            raise TypeError(f'expected a dict task -> {what}, got '
                            f'{type(losses).__name__}')
        if not losses:
            raise ValueError(f'{type(self).__name__}: no task {what} given')
        unknown = [t for t in losses if t not in self._index]
        if unknown:
            raise ValueError(
                f'{type(self).__name__}: unknown task(s) {unknown} (the '
                f'weighting has tasks {list(self.tasks)})')
        device = self._device
        out = OrderedDict()
        for task in self.tasks:
            if task not in losses:
                continue
            value = losses[task]
            if not isinstance(value, Tensor):
                value = torch.tensor(value)
            if value.numel() != 1:
                raise ValueError(
                    f'{type(self).__name__}: the {what} of task {task!r} '
                    f'must be a scalar, got shape {tuple(value.shape)}')
            value = value.detach().reshape(())
            dtype = value.dtype if value.is_floating_point() else None
            dtype = torch.promote_types(dtype or torch.float32, torch.float32)
            value = value.to(device=device, dtype=dtype)
            if not math.isfinite(value.item()):
                raise ValueError(
                    f'{type(self).__name__}: the {what} of task {task!r} '
                    f'is not finite ({value.item()})')
            out[task] = value
        return out

    def _output(self, weights: Mapping[str, Tensor],
                losses: Mapping[str, Any]) -> Dict[str, Tensor]:
        """Detached weights on the device of each given loss, in a
        floating dtype of at least float32 (the loss's when wider)."""
        out = {}
        for task, w in weights.items():
            loss = losses[task]
            device, dtype = w.device, w.dtype
            if isinstance(loss, Tensor):
                device = loss.device
                if loss.is_floating_point():
                    dtype = torch.promote_types(loss.dtype, torch.float32)
            out[task] = w.detach().reshape(()).to(device=device, dtype=dtype)
        return out

    @staticmethod
    def _log_key(name: str, task: str) -> str:
        """``'<name>.<task>'``, with any ``'loss'`` in it spelled
        ``'los'`` (mmengine's ``parse_losses`` and log processing treat
        keys that contain ``'loss'`` as losses)."""
        return f'{name}.{task}'.replace('loss', 'los')

    def _per_task(self, value: Union[float, Mapping[str, float],
                                     Sequence[float]], name: str,
                  default: float) -> List[float]:
        """A per-task float argument: a number, a task -> number mapping
        (missing tasks take ``default``) or a sequence in task order."""
        if isinstance(value, Mapping):
            unknown = [t for t in value if t not in self._index]
            if unknown:
                raise ValueError(f'{name} names unknown task(s) {unknown} '
                                 f'(tasks are {list(self.tasks)})')
            return [float(value.get(t, default)) for t in self.tasks]
        if isinstance(value, (int, float)):
            return [float(value)] * self.num_tasks
        value = [float(v) for v in value]
        if len(value) != self.num_tasks:
            raise ValueError(f'{name} has {len(value)} values for '
                             f'{self.num_tasks} tasks')
        return value

    @staticmethod
    def _build_optimizer(cfg: OptimizerCfg,
                         params: Iterable[nn.Parameter],
                         name: str = 'optimizer') -> torch.optim.Optimizer:
        """Build the weighting's own optimizer over ``params``.

        Args:
            cfg (dict | callable): A config of ``mmengine``'s
                ``OPTIMIZERS`` registry without ``params``
                (``dict(type='Adam', lr=1e-3)``), or a callable taking the
                parameter list (a ``torch.optim.Optimizer`` subclass,
                ``functools.partial(torch.optim.SGD, lr=0.1)``).
        """
        params = list(params)
        if isinstance(cfg, Mapping):
            cfg = dict(cfg)
            if 'params' in cfg:
                raise ValueError(f'{name} must not list params: the '
                                 'weighting passes its own')
            optimizer = OPTIMIZERS.build(dict(cfg, params=params))
        elif callable(cfg):
            optimizer = cfg(params)
        else:
            raise TypeError(f'{name} must be a dict config or a callable '
                            f'taking the parameters, got {cfg!r}')
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f'{name} must build a torch.optim.Optimizer, '
                            f'got {type(optimizer).__name__}')
        return optimizer

    @staticmethod
    def _step_params(optimizer: torch.optim.Optimizer,
                     grads: Mapping[nn.Parameter, Tensor]) -> None:
        """One step of ``optimizer`` with the given gradients; parameters
        without a gradient are left out of the step (torch optimizers skip
        a parameter whose ``grad`` is None: no momentum, no decay)."""
        for group in optimizer.param_groups:
            for p in group['params']:
                p.grad = None
        for p, g in grads.items():
            p.grad = g.detach().to(device=p.device, dtype=p.dtype).clone()
        optimizer.step()
        for group in optimizer.param_groups:
            for p in group['params']:
                p.grad = None

    @staticmethod
    def _optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
        # a deep copy: torch's state dict holds references to the live
        # moment tensors, which later steps change in place
        return copy.deepcopy(optimizer.state_dict())

    @staticmethod
    def _load_optimizer_state(optimizer: torch.optim.Optimizer,
                              state: dict) -> None:
        optimizer.load_state_dict(copy.deepcopy(state))
