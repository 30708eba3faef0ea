"""FAMO: Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023)."""
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from mtl_pvt.registry import MODELS
from .base_loss_weighting import BaseLossWeighting, OptimizerCfg


@MODELS.register_module()
class FAMO(BaseLossWeighting):
    """Balance the tasks' rates of log-loss decrease with learned logits.

    Liu, Liu, Jin, Stone and Liu, "FAMO: Fast Adaptive Multitask
    Optimization", NeurIPS 2023, as its official implementation
    (github.com/Cranial-XIX/FAMO) computes it.

    Each task has a logit ``xi_t`` (init 0), ``z = softmax(xi)``. With
    ``D_t = L_t - min_loss_t + eps`` and ``c = sum_t z_t / D_t`` over the
    present tasks, the official weighted loss ``sum_t z_t log(D_t) / c``
    (``z`` and ``c`` treated as constants) has the gradient
    ``sum_t z_t / (c D_t) * grad L_t``, so the weights are the detached::

        w_t = z_t / (c * D_t)

    (``z`` restricted to the present tasks: the softmax normaliser
    cancels between ``z_t`` and ``c``; one task present gets weight 1).

    The logits learn from the decrease of the log losses over a step::

        delta_t = log D_t(before) - log D_t(after)
        grad xi = J^T delta,  J = d softmax(xi) / d xi
                (grad xi_t = z_t * (delta_t - sum_j z_j delta_j))

    and one step of the own optimizer (Adam, ``lr=w_lr``,
    ``weight_decay=gamma``) on ``xi``. A task whose log loss fell less
    than the ``z``-weighted average gets a larger logit. When only some
    tasks have a delta, ``z`` and ``J`` are those of the softmax over
    these tasks, and the other logits are left out of the step.

    Variants (``variant``):

    - ``'official'`` (:attr:`requires_losses_after_step` True): the
      "after" losses are those of the same batch after the optimizer step,
      from one extra no-grad forward that the caller runs and passes to
      :meth:`update_after_step`; :meth:`update` only remembers the step's
      losses. Cost: one forward pass (no backward) per step.
    - ``'next_step'``: no extra forward. The "after" loss of a task is its
      loss at its next step (another batch): every :meth:`update`
      computes the delta of each present task that has a loss from an
      earlier step, then remembers the current losses. Cheaper, but the
      delta mixes the batch-to-batch noise of the losses into the update
      of the logits, and the logits learn one step late.

    Defaults are those of the official ``FAMO`` class (``w_lr=0.025``,
    ``gamma=0.01``, ``min_losses`` 0, ``eps=1e-8``); its experiments
    scripts may set other values per benchmark.

    Distributed training: the caller averages both the step's and the
    "after" losses over the ranks; the update is deterministic, so every
    rank keeps the same logits.

    Args:
        tasks (Sequence[str]): Task names (given by the wrapper).
        variant (str): ``'official'`` or ``'next_step'``. Defaults to
            ``'official'``.
        w_lr (float): Learning rate of the logits' Adam. Defaults to 0.025.
        gamma (float): Weight decay of the logits' Adam (the official
            "regularization coefficient"). Defaults to 0.01.
        min_losses (float | dict[str, float] | Sequence[float]): Lower
            bounds of the losses (``L_t`` must stay above
            ``min_loss_t - eps``). Defaults to 0.
        eps (float): Added to ``L_t - min_loss_t``. Defaults to 1e-8.
        optimizer (dict | callable, optional): Replaces the default
            ``dict(type='Adam', lr=w_lr, weight_decay=gamma)`` (then
            ``w_lr`` and ``gamma`` are unused).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    VARIANTS = ('official', 'next_step')

    def __init__(self,
                 tasks: Sequence[str],
                 variant: str = 'official',
                 w_lr: float = 0.025,
                 gamma: float = 0.01,
                 min_losses: Union[float, Mapping[str, float],
                                   Sequence[float]] = 0.,
                 eps: float = 1e-8,
                 optimizer: Optional[OptimizerCfg] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks, init_cfg=init_cfg)
        if variant not in self.VARIANTS:
            raise ValueError(f'variant must be one of {self.VARIANTS}, got '
                             f'{variant!r}')
        self.variant = variant
        self.requires_losses_after_step = variant == 'official'
        self.eps = float(eps)
        self.logits = nn.ParameterList(
            [nn.Parameter(torch.tensor(0.)) for _ in self.tasks])
        if optimizer is None:
            optimizer = dict(type='Adam', lr=w_lr, weight_decay=gamma)
        self.optimizer = self._build_optimizer(optimizer,
                                               self.logits.parameters())
        self.register_buffer(
            'min_losses',
            torch.tensor(self._per_task(min_losses, 'min_losses', 0.)))
        # the latest loss of each task, not yet compared with a later one
        self.register_buffer('prev_losses', torch.zeros(self.num_tasks))
        self.register_buffer('has_prev',
                             torch.zeros(self.num_tasks, dtype=torch.bool))

    def _logits(self) -> Tensor:
        return torch.stack([p.detach() for p in self.logits])

    def _d(self, losses: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
        """``D_t = L_t - min_loss_t + eps``, checked positive."""
        out = OrderedDict()
        for task, loss in losses.items():
            d = loss - self.min_losses[self._index[task]] + self.eps
            if not d.item() > 0:
                raise ValueError(
                    f'{type(self).__name__}: the loss of task {task!r} '
                    f'({loss.item()}) is not above its min_loss '
                    f'({self.min_losses[self._index[task]].item()}); '
                    'log(L - min_loss) is undefined')
            out[task] = d
        return out

    def weights(self, losses: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        d = self._d(self._check_losses(losses))
        idx = [self._index[t] for t in d]
        z = torch.softmax(self._logits()[idx], 0)
        dv = torch.stack(list(d.values())).to(z.dtype)
        c = (z / dv).sum()
        w = z / (c * dv)
        return self._output(dict(zip(d, w.unbind())), losses)

    def _remember(self, losses: Mapping[str, Tensor]) -> None:
        for task, loss in losses.items():
            i = self._index[task]
            self.prev_losses[i] = loss.to(self.prev_losses.dtype)
            self.has_prev[i] = True

    def _step_logits(self, after: Mapping[str, Tensor]) -> None:
        """Step the logits of the tasks of ``after`` that have a previous
        loss, with delta = log D(previous) - log D(after)."""
        tasks = [t for t in after if bool(self.has_prev[self._index[t]])]
        if not tasks:
            return
        idx = [self._index[t] for t in tasks]
        d_after = self._d({t: after[t] for t in tasks})
        d_before = self._d(
            {t: self.prev_losses[self._index[t]]
             for t in tasks})
        delta = torch.stack([
            d_before[t].log() - d_after[t].to(d_before[t].dtype).log()
            for t in tasks
        ])
        z = torch.softmax(self._logits()[idx], 0)
        delta = delta.to(z.dtype)
        grad = z * (delta - (z * delta).sum())  # J^T delta
        self._step_params(self.optimizer, {
            self.logits[i]: g
            for i, g in zip(idx, grad.unbind())
        })

    def update(self,
               losses: Mapping[str, Tensor],
               grad_norms: Optional[Mapping[str, Tensor]] = None) -> None:
        checked = self._check_losses(losses)
        self._d(checked)
        if self.variant == 'next_step':
            self._step_logits(checked)
        self._remember(checked)

    def update_after_step(self, losses: Mapping[str, Tensor]) -> None:
        if self.variant != 'official':
            super().update_after_step(losses)
        checked = self._check_losses(losses)
        self._step_logits(checked)
        self.has_prev.zero_()

    def log_vars(self) -> Dict[str, float]:
        """``famo_z.<task>``: the softmax of the logits over all tasks."""
        z = torch.softmax(self._logits(), 0)
        return {
            self._log_key('famo_z', t): float(v)
            for t, v in zip(self.tasks, z)
        }

    def get_extra_state(self) -> Any:
        return dict(optimizer=self._optimizer_state(self.optimizer))

    def set_extra_state(self, state: Any) -> None:
        self._load_optimizer_state(self.optimizer, state['optimizer'])

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, variant={self.variant!r}'
