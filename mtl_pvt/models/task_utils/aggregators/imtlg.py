"""IMTL-G: impartial multi-task learning, gradient balancing."""
import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator
from .qp_solvers import normalized, zero_rows


@TASK_UTILS.register_module()
class IMTLG(BaseAggregator):
    """IMTL-G: the combination with equal projections on all unit gradients.

    Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021 (the
    gradient part, IMTL-G).

    The paper's closed form, with ``u_i = g_i / |g_i|``,
    ``D = [g_1 - g_i]_{i>1}`` and ``U = [u_1 - u_i]_{i>1}``, is
    ``alpha_{2..T} = g_1 U^T (D U^T)^{-1}``, ``alpha_1 = 1 - sum alpha_{2..T}``
    and ``d = sum_i alpha_i g_i``; it is the unique combination with
    ``sum alpha = 1`` whose projections ``d . u_i`` are all equal. This
    implementation solves that defining system directly, which treats all
    tasks alike (no reference task ``g_1``)::

        sum_j alpha_j (g_j . u_i) - p = 0   for every i,   sum_j alpha_j = 1,

    in ``(alpha, p)``, with ``g_j . u_i = Gram_ij / |g_i|``, by
    minimum-norm least squares (SVD, singular values below
    ``(T + 1) eps`` of the input dtype relative to the largest dropped),
    so that a singular system (e.g. two identical tasks, which then share
    their weight equally) has a well-defined answer.

    Tasks with a zero gradient have no direction: they get weight 0 and
    the others are balanced among themselves (all zero: ``1 / T``, the
    result is zero anyway).
    """

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        num_tasks = gram.shape[0]
        keep = (~zero_rows(gram)).nonzero().flatten()
        weights = gram.new_zeros(num_tasks)
        if keep.numel() == 0:
            return weights + 1. / num_tasks
        if keep.numel() == 1:
            weights[keep] = 1.
            return weights
        sub = normalized(gram[keep][:, keep])[0]
        n = keep.numel()
        norms = sub.diagonal().sqrt()
        system = sub.new_zeros(n + 1, n + 1)
        system[:n, :n] = sub / norms[:, None]
        system[:n, n] = -1.
        system[n, :n] = 1.
        rhs = sub.new_zeros(n + 1)
        rhs[n] = 1.
        rcond = (n + 1) * torch.finfo(dtype).eps
        sol = torch.linalg.lstsq(
            system, rhs[:, None], rcond=rcond, driver='gelsd').solution[:, 0]
        weights[keep] = sol[:n]
        return weights
