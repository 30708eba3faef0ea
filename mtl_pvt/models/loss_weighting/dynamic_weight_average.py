"""Dynamic Weight Average (Liu et al., CVPR 2019), over iteration windows."""
from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor

from mtl_pvt.registry import MODELS
from .base_loss_weighting import BaseLossWeighting


@MODELS.register_module()
class DynamicWeightAverage(BaseLossWeighting):
    """Weigh tasks by the relative descent rate of their losses.

    Liu, Johns and Davison, "End-to-End Multi-Task Learning with
    Attention" (MTAN), CVPR 2019, Sec. 3.3.

    The paper's epochs are windows of ``window`` consecutive calls of
    :meth:`update` (optimizer updates) here. With ``m_t(k)`` the mean loss
    of task ``t`` over window ``k``, during window ``k``::

        r_t = m_t(k - 1) / m_t(k - 2)
        w_t = T * exp(r_t / temperature) / sum_j exp(r_j / temperature)

    with ``T`` the number of tasks of the weighting (the weights of all
    tasks sum to ``T``); all weights are 1 during the first two windows.
    A task whose loss falls more slowly (larger ``r_t``) weighs more.

    The mean of a task is over the steps where it is present: a task
    absent from a step (alternating-task steps) adds nothing to its
    window, and its weight in a step is its share of the softmax over all
    tasks, the same whichever tasks are present. A task absent for a
    whole window keeps its two previous means (its ratio does not change);
    the weights stay 1 until every task has the means of two windows. An
    older mean of exactly 0 gives the ratio 1.

    Cost: O(T) scalar operations per step; no extra forward or backward.

    Distributed training: the losses are rank-averaged by the caller and
    the window state is updated identically on every rank.

    Args:
        tasks (Sequence[str]): Task names (given by the wrapper).
        window (int): Optimizer updates per window ("epoch"). Defaults to
            100.
        temperature (float): Softmax temperature; large values give equal
            weights. Defaults to 2 (the paper's).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 window: int = 100,
                 temperature: float = 2.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks, init_cfg=init_cfg)
        if int(window) != window or window < 1:
            raise ValueError(f'window must be a positive integer, got '
                             f'{window}')
        if not temperature > 0:
            raise ValueError(f'temperature must be positive, got '
                             f'{temperature}')
        self.window = int(window)
        self.temperature = float(temperature)
        t = self.num_tasks
        f64 = dict(dtype=torch.float64)
        # sums and counts of the current window's losses
        self.register_buffer('loss_sums', torch.zeros(t, **f64))
        self.register_buffer('loss_counts', torch.zeros(t, dtype=torch.long))
        # means of the last two complete windows: row 0 the older (k - 2),
        # row 1 the newer (k - 1); num_means: how many are set (0 to 2)
        self.register_buffer('window_means', torch.zeros(2, t, **f64))
        self.register_buffer('num_means', torch.zeros(t, dtype=torch.long))
        # updates done in the current window
        self.register_buffer('window_step', torch.zeros((), dtype=torch.long))

    def _all_weights(self) -> Tensor:
        if bool((self.num_means < 2).any()):
            return torch.ones(
                self.num_tasks,
                dtype=torch.float64,
                device=self.loss_sums.device)
        older, newer = self.window_means
        ratios = torch.where(older != 0, newer / older.where(older != 0, 1.),
                             torch.ones_like(older))
        return self.num_tasks * torch.softmax(ratios / self.temperature, 0)

    def weights(self, losses: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        checked = self._check_losses(losses)
        weights = self._all_weights()
        return self._output({t: weights[self._index[t]]
                             for t in checked}, losses)

    def update(self,
               losses: Mapping[str, Tensor],
               grad_norms: Optional[Mapping[str, Tensor]] = None) -> None:
        checked = self._check_losses(losses)
        for task, loss in checked.items():
            i = self._index[task]
            self.loss_sums[i] += loss.to(torch.float64)
            self.loss_counts[i] += 1
        self.window_step += 1
        if int(self.window_step) < self.window:
            return
        seen = self.loss_counts > 0
        means = self.loss_sums / self.loss_counts.clamp(min=1)
        self.window_means[0] = torch.where(seen, self.window_means[1],
                                           self.window_means[0])
        self.window_means[1] = torch.where(seen, means, self.window_means[1])
        self.num_means += seen.long()
        self.num_means.clamp_(max=2)
        self.loss_sums.zero_()
        self.loss_counts.zero_()
        self.window_step.zero_()

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, window={self.window}, '
                f'temperature={self.temperature}')
