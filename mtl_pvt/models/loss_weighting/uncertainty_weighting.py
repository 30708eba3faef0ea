"""Homoscedastic uncertainty weighting (Kendall et al., CVPR 2018)."""
import math
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from mtl_pvt.registry import MODELS
from .base_loss_weighting import BaseLossWeighting, OptimizerCfg


@MODELS.register_module()
class UncertaintyWeighting(BaseLossWeighting):
    """Weigh each task by its learned homoscedastic uncertainty.

    Kendall, Gal and Cipolla, "Multi-Task Learning Using Uncertainty to
    Weigh Losses for Scene Geometry and Semantics", CVPR 2018.

    Each task has a learned ``s_t = log(sigma_t^2)``; its weight is::

        w_t = exp(-s_t)

    and :meth:`update` takes one step of the weighting's own optimizer on
    the objective, over the present tasks, with the detached losses::

        J(s) = sum_t exp(-s_t) * L_t + s_t
        dJ/ds_t = 1 - exp(-s_t) * L_t

    so ``s_t`` rises while ``L_t > exp(s_t)`` and falls otherwise; at the
    fixed point ``exp(-s_t) * L_t = 1``. The constant 1/2 factors of the
    paper's form ``L / (2 sigma^2) + log sigma = (exp(-s) L + s) / 2`` are
    dropped (``J`` is twice it): the fixed point and the direction of the
    updates of ``s`` are the same, and every weight is doubled, so that
    ``init=0`` starts at equal weights 1 (the plain sum of the losses).

    The network's gradient is ``sum_t w_t * grad L_t`` exactly as with
    the paper's joint loss; only ``s`` is stepped by a separate optimizer
    instead of the model's, which is what lets the optimizer wrapper keep
    the network backward free of the weighting's parameters.

    Tasks absent from a step get no gradient and are left out of the
    optimizer step (no momentum, no decay), so alternating-task steps
    update only the present task's ``s_t``.

    Cost: O(T) scalar operations per step; no extra forward or backward.

    Distributed training: the losses are rank-averaged by the caller, and
    the update is deterministic, so every rank keeps the same ``s``.

    Args:
        tasks (Sequence[str]): Task names (given by the wrapper).
        init (float | dict[str, float] | Sequence[float]): Initial
            ``s_t = log(sigma_t^2)``, for all tasks or per task. Defaults
            to 0 (weights 1).
        optimizer (dict | callable): The own optimizer of ``s``, an
            ``OPTIMIZERS`` config without params, or a callable taking the
            parameter list. Defaults to ``dict(type='Adam', lr=1e-3)``:
            Adam moves each ``s_t`` by about ``lr`` per step whatever the
            scale of the loss, so the weights follow the losses over a few
            thousand iterations (a choice of this project; the paper
            trains ``s`` with the network's optimizer).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 init: Union[float, Mapping[str, float], Sequence[float]] = 0.,
                 optimizer: OptimizerCfg = dict(type='Adam', lr=1e-3),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks, init_cfg=init_cfg)
        self.log_sigma_sq = nn.ParameterList([
            nn.Parameter(torch.tensor(v))
            for v in self._per_task(init, 'init', 0.)
        ])
        self.optimizer = self._build_optimizer(optimizer,
                                               self.log_sigma_sq.parameters())

    def weights(self, losses: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        checked = self._check_losses(losses)
        return self._output(
            {
                t: torch.exp(-self.log_sigma_sq[self._index[t]].detach())
                for t in checked
            }, losses)

    def update(self,
               losses: Mapping[str, Tensor],
               grad_norms: Optional[Mapping[str, Tensor]] = None) -> None:
        checked = self._check_losses(losses)
        grads = {}
        for task, loss in checked.items():
            s = self.log_sigma_sq[self._index[task]]
            grads[s] = 1 - torch.exp(-s.detach()) * loss.to(s.dtype)
        self._step_params(self.optimizer, grads)

    def log_vars(self) -> Dict[str, float]:
        """``sigma.<task>`` = exp(s_t / 2) (the uncertainty sigma_t)."""
        return {
            self._log_key('sigma', task): math.exp(float(s.detach()) / 2)
            for task, s in zip(self.tasks, self.log_sigma_sq)
        }

    def get_extra_state(self) -> Any:
        return dict(optimizer=self._optimizer_state(self.optimizer))

    def set_extra_state(self, state: Any) -> None:
        self._load_optimizer_state(self.optimizer, state['optimizer'])
