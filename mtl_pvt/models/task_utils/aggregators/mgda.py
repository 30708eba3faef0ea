"""MGDA: the min-norm point of the convex hull of the task gradients."""
import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator
from .qp_solvers import min_norm_simplex, normalized, zero_rows


@TASK_UTILS.register_module()
class MGDA(BaseAggregator):
    """Multiple-gradient descent: the min-norm convex combination.

    Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
    NeurIPS 2018 (MGDA-UB applied to the gradients it is given).

    ``w = argmin_{w in simplex} |w @ G|^2 = argmin w^T Gram w``; the
    update ``w @ G`` is a common descent direction of all tasks, or zero
    at a Pareto-stationary point (0 in the convex hull, e.g. when a task
    has a zero gradient). For T = 2 the closed form
    ``w_1 = clip((g_2 - g_1) . g_2 / |g_1 - g_2|^2, 0, 1)`` is used; for
    T > 2 an exact active-set method on the simplex (finite termination,
    KKT multipliers checked to 1e-11 relative), so the weights are exact
    up to round-off (no Frank-Wolfe iteration count).

    Args:
        normalization (str): ``'none'``, or ``'l2'``: the min-norm problem
            is solved on the unit gradients ``g_i / |g_i|`` and its
            weights applied to the raw gradients, as the scales of the
            losses in the authors' code. The loss-based normalisations
            (``'loss'``, ``'loss+'``) need the loss values and are not
            supported. Defaults to ``'none'``.
    """

    def __init__(self, normalization: str = 'none') -> None:
        if normalization not in ('none', 'l2'):
            raise ValueError("normalization must be 'none' or 'l2', got "
                             f'{normalization!r}')
        self.normalization = normalization

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        if self.normalization == 'l2':
            norms = gram.diagonal().clamp_min(0).sqrt()
            norms[zero_rows(gram)] = 1.
            gram = gram / norms[:, None] / norms[None, :]
        return min_norm_simplex(normalized(gram)[0])

    def extra_repr(self) -> str:
        return f'normalization={self.normalization!r}'
