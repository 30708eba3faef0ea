"""Geometric Loss Strategy (Chennupati et al., CVPR Workshops 2019)."""
from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor

from mtl_pvt.registry import MODELS
from .base_loss_weighting import BaseLossWeighting


@MODELS.register_module()
class GeometricLossStrategy(BaseLossWeighting):
    """Minimise the geometric mean of the task losses.

    Chennupati, Sistu, Yogamani and Rawashdeh, "MultiNet++: Multi-Stream
    Feature Aggregation and Geometric Loss Strategy for Multi-Task
    Learning", CVPR Workshops 2019.

    The paper's objective over the ``n`` present tasks is the geometric
    mean ``GM = (prod_t L_t)^(1/n)``. Its gradient is::

        grad GM = sum_t GM / (n * L_t) * grad L_t

    so weighing the losses by the detached::

        w_t = GM / (n * L_t)

    gives the network exactly the gradient of ``GM`` (the weighted sum's
    value differs from ``GM``, its gradient does not). ``GM / L_t`` is
    computed as ``exp(mean_j log L_j - log L_t)``. With one task present
    the weight is 1.

    The geometric mean needs positive losses: a negative loss raises a
    ValueError naming the task; a loss below ``eps`` (0, or an underflow)
    is clamped to ``eps`` before the weights are computed, which keeps the
    weights finite, though a task whose loss is that small then gets a
    very large weight (``GM / (n * eps)``, the true gradient diverges as
    ``L_t -> 0``).

    Stateless. Cost: O(n) scalar operations per step.

    Distributed training: the weights are a function of the rank-averaged
    losses given by the caller, so they agree on every rank.

    Args:
        tasks (Sequence[str]): Task names (given by the wrapper).
        eps (float): Lower bound of the losses. Defaults to 1e-8.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 eps: float = 1e-8,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks, init_cfg=init_cfg)
        if not eps > 0:
            raise ValueError(f'eps must be positive, got {eps}')
        self.eps = float(eps)

    def weights(self, losses: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        checked = self._check_losses(losses)
        for task, loss in checked.items():
            if loss.item() < 0:
                raise ValueError(
                    f'{type(self).__name__}: the loss of task {task!r} is '
                    f'negative ({loss.item()}); the geometric mean needs '
                    'non-negative losses')
        values = torch.stack(list(checked.values())).clamp(min=self.eps)
        logs = values.log()
        # GM / L_t = exp(mean_j log L_j - log L_t): exactly 1 for one task
        w = (logs.mean() - logs).exp() / logs.numel()
        return self._output(dict(zip(checked, w.unbind())), losses)

    def update(self,
               losses: Mapping[str, Tensor],
               grad_norms: Optional[Mapping[str, Tensor]] = None) -> None:
        self.weights(losses)  # the same checks

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, eps={self.eps}'
