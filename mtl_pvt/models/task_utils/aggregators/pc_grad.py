"""PCGrad: projecting conflicting gradients."""
from typing import Any, Dict

import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator
from .qp_solvers import zero_rows


@TASK_UTILS.register_module()
class PCGrad(BaseAggregator):
    """Projecting conflicting gradients (gradient surgery).

    Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020.

    For every task ``i`` (Algorithm 1 of the paper), the other tasks ``j``
    are visited in a random order and, whenever the current modified
    gradient conflicts with the original one, ``g_i^PC . g_j < 0``, the
    conflicting component is removed::

        g_i^PC <- g_i^PC - (g_i^PC . g_j) / |g_j|^2 g_j

    (``g_i^PC`` starts at ``g_i``; it is always projected on the ORIGINAL
    ``g_j``). The update is the sum (or mean) of the ``g_i^PC``.

    Everything is done on coefficients: row ``i`` of the T x T matrix ``C``
    holds the coefficients of ``g_i^PC`` over the original rows, so that
    ``g_i^PC . g_j = (C Gram)_ij``; the result is ``w = 1^T C`` (sum) or
    ``1^T C / T`` (mean). Tasks with a zero gradient are never projected
    on (their inner products are 0).

    The random orders come from the aggregator's own ``torch.Generator``
    seeded with ``seed``: one ``randperm`` of the T - 1 other tasks per
    task ``i``, drawn in the order ``i = 0 .. T-1`` on every call with
    T >= 2 (a call with T = 1 draws nothing). Under DDP, the same seed on
    every rank gives the same orders on every rank. The generator state is
    in :meth:`state_dict`.

    Args:
        reduction (str): ``'sum'`` (the paper's update) or ``'mean'``.
            Defaults to ``'sum'``.
        seed (int): Seed of the generator of the orders. Defaults to 0.
    """

    stateless = False
    deterministic = False

    def __init__(self, reduction: str = 'sum', seed: int = 0) -> None:
        if reduction not in ('sum', 'mean'):
            raise ValueError(
                f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.reduction = reduction
        self.seed = seed
        self._generator = torch.Generator()
        self._generator.manual_seed(seed)

    def projection_matrix(self, gram: Tensor) -> Tensor:
        """The coefficients of the projected gradients ``g_i^PC``.

        Draws the random orders (advances the generator) like a call.

        Args:
            gram (Tensor): The Gram matrix, shape (T, T).

        Returns:
            Tensor: ``C`` of shape (T, T), dtype and device of ``gram``,
            with ``g_i^PC = C[i] @ G``.
        """
        num_tasks = self._check_gram(gram)
        if num_tasks == 1:
            return torch.ones(1, 1, dtype=gram.dtype, device=gram.device)
        gram64 = gram.detach().to(device='cpu', dtype=torch.float64)
        gram64 = 0.5 * (gram64 + gram64.T)
        return self._projection_matrix(gram64).to(
            device=gram.device, dtype=gram.dtype)

    def _projection_matrix(self, gram: Tensor) -> Tensor:
        num_tasks = gram.shape[0]
        zero = zero_rows(gram).tolist()
        coef = torch.eye(num_tasks, dtype=torch.float64)
        for i in range(num_tasks):
            others = [j for j in range(num_tasks) if j != i]
            order = torch.randperm(num_tasks - 1, generator=self._generator)
            for k in order.tolist():
                j = others[k]
                if zero[j]:
                    continue
                dot = coef[i] @ gram[:, j]
                if dot < 0:
                    coef[i, j] -= dot / gram[j, j]
        return coef

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        weights = self._projection_matrix(gram).sum(0)
        if self.reduction == 'mean':
            weights = weights / gram.shape[0]
        return weights

    def state_dict(self) -> Dict[str, Any]:
        """The state of the generator of the random orders.

        Returns:
            dict: ``seed`` and ``generator_state`` (a uint8 tensor).
        """
        return dict(
            seed=self.seed, generator_state=self._generator.get_state())

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue the random stream saved by :meth:`state_dict`.

        Args:
            state (dict): A dict returned by :meth:`state_dict`.
        """
        self._generator.set_state(state['generator_state'].cpu())
        self.seed = state.get('seed', self.seed)

    def extra_repr(self) -> str:
        return f'reduction={self.reduction!r}, seed={self.seed}'
