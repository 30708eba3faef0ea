"""GradNorm (Chen et al., ICML 2018)."""
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from mtl_pvt.registry import MODELS
from .base_loss_weighting import BaseLossWeighting, OptimizerCfg


@MODELS.register_module()
class GradNorm(BaseLossWeighting):
    """Learn weights that balance the tasks' gradient norms.

    Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm: Gradient
    Normalization for Adaptive Loss Balancing in Deep Multitask
    Networks", ICML 2018.

    Learned weights ``w_t`` (init 1). In :meth:`update`, over the present
    tasks ``S`` (``n = |S|``), with ``G_t`` the given norm of the gradient
    of the weighted loss ``w_t L_t`` w.r.t. the last shared stage (so
    ``g_t = G_t / w_t`` is that of ``L_t``) and ``L0_t`` the loss of the
    task at its first update (stored)::

        r_t      = (L_t / L0_t) / mean_{j in S} (L_j / L0_j)
        target_t = mean_{j in S} G_j * r_t ** alpha      (a constant)
        L_grad   = sum_{t in S} |w_t * g_t - target_t|
        dL_grad / dw_t = sign(G_t - target_t) * g_t

    then one step of the own optimizer on ``w`` (tasks outside ``S`` are
    left out of it), a clamp to ``w_t >= min_weight``, and a
    renormalisation of the present weights to their sum before the step,
    so that the weights of all tasks keep summing to ``T`` (exactly ``T``
    when every task is present, as in the paper's ``sum_t w_t = T``).
    ``alpha`` sets how strongly tasks that train more slowly (higher
    relative loss ``r_t``) are pushed; ``alpha=0`` equalises the norms.
    A step with a single task present leaves the weights unchanged
    (``r = 1``, the objective is 0).

    :meth:`weights` returns the current ``w_t``.

    Cost: the caller keeps the tasks' gradients of the last shared stage
    apart and computes their norms (``requires_grad_norms``), i.e. one
    backward per task through the heads and the shared stages above (the
    optimizer wrapper's per-task mode); the weighting itself is O(T).

    Distributed training: the norms are of the rank-averaged gradients
    and the losses are rank-averaged, so the update, deterministic, keeps
    the same weights on every rank.

    Args:
        tasks (Sequence[str]): Task names (given by the wrapper).
        alpha (float): Restoring-force strength. Defaults to 1.5 (the
            paper's NYUv2 value).
        lr (float): Learning rate of the weights' Adam. Defaults to 0.025
            (this project's choice; the paper trains the weights with its
            own learning-rate schedule).
        min_weight (float): Lower bound of each weight after a step.
            Defaults to 1e-4.
        optimizer (dict | callable, optional): Replaces the default
            ``dict(type='Adam', lr=lr)`` (then ``lr`` is unused).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    requires_grad_norms = True

    def __init__(self,
                 tasks: Sequence[str],
                 alpha: float = 1.5,
                 lr: float = 0.025,
                 min_weight: float = 1e-4,
                 optimizer: Optional[OptimizerCfg] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks, init_cfg=init_cfg)
        if not min_weight > 0:
            raise ValueError(f'min_weight must be positive, got {min_weight}')
        self.alpha = float(alpha)
        self.min_weight = float(min_weight)
        self.task_weights = nn.ParameterList(
            [nn.Parameter(torch.tensor(1.)) for _ in self.tasks])
        if optimizer is None:
            optimizer = dict(type='Adam', lr=lr)
        self.optimizer = self._build_optimizer(optimizer,
                                               self.task_weights.parameters())
        self.register_buffer('initial_losses', torch.zeros(self.num_tasks))
        self.register_buffer('has_initial',
                             torch.zeros(self.num_tasks, dtype=torch.bool))

    def weights(self, losses: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        checked = self._check_losses(losses)
        return self._output(
            {t: self.task_weights[self._index[t]].detach()
             for t in checked}, losses)

    def update(self,
               losses: Mapping[str, Tensor],
               grad_norms: Optional[Mapping[str, Tensor]] = None) -> None:
        checked = self._check_losses(losses)
        if grad_norms is None:
            raise ValueError(f'{type(self).__name__}.update needs the '
                             'grad_norms of the present tasks')
        norms = self._check_losses(grad_norms, what='gradient norm')
        if list(norms) != list(checked):
            raise ValueError(f'{type(self).__name__}: grad_norms has tasks '
                             f'{list(norms)}, the losses {list(checked)}')
        for task, g in norms.items():
            if g.item() < 0:
                raise ValueError(f'{type(self).__name__}: the gradient norm '
                                 f'of task {task!r} is negative')
        for task, loss in checked.items():
            i = self._index[task]
            if bool(self.has_initial[i]):
                continue
            if not loss.item() > 0:
                raise ValueError(
                    f'{type(self).__name__}: the first loss of task '
                    f'{task!r} is {loss.item()}; the loss ratios need a '
                    'positive initial loss')
            self.initial_losses[i] = loss.to(self.initial_losses.dtype)
            self.has_initial[i] = True
        if len(checked) < 2:
            return
        idx = [self._index[t] for t in checked]
        params = [self.task_weights[i] for i in idx]
        w = torch.stack([p.detach() for p in params])
        dtype = w.dtype
        loss = torch.stack(list(checked.values())).to(dtype)
        big_g = torch.stack(list(norms.values())).to(dtype)
        ratio = loss / self.initial_losses[idx].to(dtype)
        rel = ratio / ratio.mean()
        target = big_g.mean() * rel**self.alpha
        grad = torch.sign(big_g - target) * big_g / w
        total = w.sum()
        self._step_params(self.optimizer, dict(zip(params, grad.unbind())))
        with torch.no_grad():
            new = torch.stack([p.detach() for p in params])
            new = new.clamp(min=self.min_weight)
            new = new * (total / new.sum())
            for p, v in zip(params, new.unbind()):
                p.copy_(v)

    def get_extra_state(self) -> Any:
        return dict(optimizer=self._optimizer_state(self.optimizer))

    def set_extra_state(self, state: Any) -> None:
        self._load_optimizer_state(self.optimizer, state['optimizer'])

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, alpha={self.alpha}'
