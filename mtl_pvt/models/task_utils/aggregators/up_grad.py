"""UPGrad: unconflicting projection of gradients."""
from typing import Optional, Sequence

import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator
from .qp_solvers import active_set_qp, normalized


@TASK_UTILS.register_module()
class UPGrad(BaseAggregator):
    """UPGrad: the average of the gradients projected on the dual cone.

    Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization",
    2024 (the UPGrad aggregator of TorchJD).

    Every row ``g_i`` is projected on the dual cone of the rows,
    ``C = {x : G x >= 0}`` (the directions that conflict with no task),
    and the update is ``sum_i p_i proj_C(g_i)`` with the preference
    ``p`` (uniform ``1 / T``: the mean of the projections).

    The projection in terms of the Gram matrix: ``proj_C(u)`` minimises
    ``|x - u|^2`` subject to ``G x >= 0``; with multipliers ``lam >= 0``
    the minimiser is ``x = u + G^T lam``, and for ``u = G^T e_i`` the dual
    problem is ``min_{lam >= 0} 1/2 lam^T Gram lam + lam^T Gram e_i``.
    With ``v = e_i + lam`` this is::

        v_i = argmin_{v >= e_i} v^T Gram v,   proj_C(g_i) = G^T v_i,

    so ``w = sum_i p_i v_i``. Each of these T small QPs is solved exactly
    by the active-set method (started at ``v = e_i``, which is already
    optimal when ``g_i`` conflicts with no task; KKT multipliers checked
    to 1e-11 relative). At the solution ``(Gram v_i)_j = 0`` for the free
    ``j`` and ``>= 0`` for the others, so every projection, hence the
    update, has a non-negative inner product with every row, up to
    round-off. Unlike TorchJD, the Gram matrix is not regularised: the
    active-set method handles a singular Gram (a zero gradient projects
    to 0 and constrains nothing).

    Args:
        pref_vector (Sequence[float], optional): The weights ``p`` of the
            projections, non-negative, in the order of the tasks, used as
            given (not normalised). Defaults to ``1 / T`` each.
    """

    def __init__(self, pref_vector: Optional[Sequence[float]] = None) -> None:
        if pref_vector is not None:
            pref_vector = [float(x) for x in pref_vector]
            if any(x < 0 for x in pref_vector):
                raise ValueError('pref_vector must be non-negative, got '
                                 f'{pref_vector}')
        self.pref_vector = pref_vector

    def projection_weights(self, gram: Tensor) -> Tensor:
        """The coefficients of the projected gradients.

        Args:
            gram (Tensor): The Gram matrix, shape (T, T) (solved in
                float64).

        Returns:
            Tensor: ``V`` of shape (T, T), with
            ``proj_C(g_i) = V[i] @ G``.
        """
        gram = gram.detach().to(device='cpu', dtype=torch.float64)
        gram = normalized(gram)[0]
        num_tasks = gram.shape[0]
        eye = torch.eye(num_tasks, dtype=gram.dtype)
        return torch.stack(
            [active_set_qp(gram, lower=eye[i]) for i in range(num_tasks)])

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        num_tasks = gram.shape[0]
        if self.pref_vector is None:
            pref = gram.new_full((num_tasks, ), 1. / num_tasks)
        else:
            if len(self.pref_vector) != num_tasks:
                raise ValueError(f'{len(self.pref_vector)} preferences for '
                                 f'{num_tasks} tasks')
            pref = gram.new_tensor(self.pref_vector)
        return pref @ self.projection_weights(gram)

    def extra_repr(self) -> str:
        return f'pref_vector={self.pref_vector}'
