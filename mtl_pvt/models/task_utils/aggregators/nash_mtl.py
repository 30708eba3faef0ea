"""Nash-MTL: multi-task learning as a bargaining game."""
import math
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator
from .qp_solvers import min_norm_simplex, normalized, zero_rows


@TASK_UTILS.register_module()
class NashMTL(BaseAggregator):
    """Nash-MTL: the Nash bargaining solution of the task gradients.

    Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022.

    The weights ``a > 0`` solve the bargaining condition
    ``Gram a = 1 / a`` (elementwise; ``G G^T a = 1 / a`` in the paper's
    notation) and the update is ``a @ G``. The authors solve it with
    cvxpy by a sequence of convex approximations; here it is solved
    exactly: ``a`` is the unique minimiser of the strictly convex
    ``f(a) = 1/2 a^T Gram a - sum log a_i`` on ``a > 0`` (its gradient is
    ``Gram a - 1 / a``), found by Newton's method (Hessian
    ``Gram + diag(1 / a^2)``, positive definite) with the step capped at
    0.99 of the way to the boundary ``a = 0`` and Armijo backtracking on
    ``f`` while the Newton decrement is above 1/4 (``f`` is
    self-concordant: full steps below, with quadratic convergence),
    started from
    ``1 / |g_i|`` scaled to the optimum along that ray (exact for T = 2),
    until ``max_i |a_i (Gram a)_i - 1| <= tol`` or the squared Newton
    decrement falls below 1e-14 (one more full step then reaches
    round-off; on ill-conditioned Gram matrices the residual cannot reach
    ``tol``). The Gram matrix is
    divided by its largest diagonal entry first and ``a`` scaled back by
    ``1 / sqrt(scale)``.

    Degenerate Gram matrices:

    - A task with a zero gradient has no solution ``a_i``; it gets
      weight 0 and the others bargain among themselves.
    - The solution exists iff 0 is not in the convex hull of the
      gradients (otherwise ``f`` is unbounded below: some gradients
      cancel with positive weights, e.g. ``g`` and ``-g``). This is
      checked with the min-norm point of the hull (MGDA); when its squared
      norm is at most ``eps`` (relative to the largest squared norm) the
      regularised condition ``(Gram + eps I) a = 1 / a`` is solved
      instead: weights of order ``1 / sqrt(eps)`` along the cancelling
      combination, which contributes (almost) nothing to ``a @ G``, and
      the others as usual. No NaN in any case.

    Args:
        max_norm (float, optional): If set, the weights are scaled down so
            that the aggregated gradient has norm at most ``max_norm``
            (``|a @ G| = sqrt(a^T Gram a)``). The authors clip the norm
            of the shared parameters' gradient to 1.0 after the backward
            pass; here it is off by default because the optimizer
            wrapper's ``clip_grad`` does that for all parameters.
            Defaults to None.
        update_weights_every (int): Solve for new weights every this many
            calls and reuse the last weights in between (the authors'
            option to save time). Defaults to 1.
        optim_niter (int): Maximum number of Newton iterations (the
            authors' name, there the number of convex approximations);
            Newton stops at ``tol``, usually within 10 iterations.
            Defaults to 100.
        eps (float): Threshold and regularisation of the degenerate case.
            Defaults to 1e-8.
        tol (float): Tolerance on the relative residual of the
            bargaining condition. Defaults to 1e-12.
    """

    def __init__(self,
                 max_norm: Optional[float] = None,
                 update_weights_every: int = 1,
                 optim_niter: int = 100,
                 eps: float = 1e-8,
                 tol: float = 1e-12) -> None:
        if update_weights_every < 1:
            raise ValueError('update_weights_every must be >= 1, got '
                             f'{update_weights_every}')
        if max_norm is not None and max_norm <= 0:
            raise ValueError(f'max_norm must be > 0, got {max_norm}')
        self.max_norm = max_norm
        self.update_weights_every = update_weights_every
        self.optim_niter = optim_niter
        self.eps = eps
        self.tol = tol
        # with reuse of the weights, the step and the weights are state
        self.stateless = update_weights_every == 1
        self._step = 0
        self._weights: Optional[Tensor] = None

    def bargaining_weights(self, gram: Tensor) -> Tensor:
        """Solve ``Gram a = 1 / a`` (see the class documentation).

        Args:
            gram (Tensor): The Gram matrix, shape (T, T) (solved in
                float64).

        Returns:
            Tensor: ``a`` of shape (T, ), >= 0 (0 for zero gradients).
        """
        gram = gram.detach().to(device='cpu', dtype=torch.float64)
        num_tasks = gram.shape[0]
        weights = gram.new_zeros(num_tasks)
        keep = (~zero_rows(gram)).nonzero().flatten()
        if keep.numel() == 0:
            return weights
        sub, scale = normalized(gram[keep][:, keep])
        n = keep.numel()
        if n > 1 and self._min_norm_sq(sub) <= self.eps:
            sub = sub + self.eps * torch.eye(n, dtype=sub.dtype)
        weights[keep] = self._newton(sub) / math.sqrt(scale)
        return weights

    @staticmethod
    def _min_norm_sq(gram: Tensor) -> float:
        w = min_norm_simplex(gram)
        return (w @ gram @ w).item()

    def _newton(self, gram: Tensor) -> Tensor:
        n = gram.shape[0]

        def objective(x):
            return (0.5 * (x @ gram @ x) - x.log().sum()).item()

        a = gram.diagonal().rsqrt()
        a = a * math.sqrt(n / (a @ gram @ a).item())
        value = objective(a)
        for _ in range(self.optim_niter):
            ga = gram @ a
            if (a * ga - 1.).abs().max().item() <= self.tol:
                break
            grad = ga - 1. / a
            step = -torch.linalg.solve(gram + torch.diag(a.pow(-2)), grad)
            slope = (grad @ step).item()  # < 0: -(Newton decrement)^2
            if -slope <= 1e-24:
                break  # converged to round-off
            # the largest step that keeps a > 0 (with a margin), then
            # backtracking (Armijo) on the convex objective
            neg = step < 0
            t = 1.
            if neg.any():
                t = min(1., 0.99 * (-a[neg] / step[neg]).min().item())
            while True:
                new = a + t * step
                new_value = objective(new)
                # f is self-concordant: with a Newton decrement below 1/4
                # the full step converges quadratically (and f is then
                # too flat to compare in floating point)
                if -slope <= 0.0625 or t < 1e-12 \
                        or new_value <= value + 0.25 * t * slope:
                    break
                t *= 0.5
            a, value = new, new_value
            if -slope <= 1e-14 and t == 1.:
                # quadratic convergence: this step reached round-off (the
                # residual may stay above tol on ill-conditioned Grams)
                break
        return a

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        num_tasks = gram.shape[0]
        reuse = (
            self._weights is not None
            and self._step % self.update_weights_every != 0
            and self._weights.numel() == num_tasks)
        self._step += 1
        if reuse:
            return self._weights.clone()
        weights = self.bargaining_weights(gram)
        if self.max_norm is not None:
            norm = math.sqrt(max((weights @ gram @ weights).item(), 0.))
            if norm > self.max_norm:
                weights = weights * (self.max_norm / norm)
        self._weights = weights.clone()
        return weights

    def state_dict(self) -> Dict[str, Any]:
        """The call counter and the last weights (for their reuse).

        Returns:
            dict: Empty with ``update_weights_every=1``; otherwise
            ``step`` (int) and ``weights`` (float64 tensor or None).
        """
        if self.stateless:
            return {}
        return dict(step=self._step, weights=self._weights)

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict`.

        Args:
            state (dict): A dict returned by :meth:`state_dict`.
        """
        self._step = int(state.get('step', 0))
        weights = state.get('weights')
        self._weights = None if weights is None else weights.detach().to(
            device='cpu', dtype=torch.float64).clone()

    def extra_repr(self) -> str:
        return (f'max_norm={self.max_norm}, '
                f'update_weights_every={self.update_weights_every}')
