"""CAGrad: conflict-averse gradient descent."""
import math
from typing import Tuple

import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator
from .qp_solvers import active_set_qp, normalized


@TASK_UTILS.register_module()
class CAGrad(BaseAggregator):
    """Conflict-averse gradient descent.

    Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning",
    NeurIPS 2021.

    With ``g0`` the mean gradient and ``k = c |g0|`` (``sqrt(phi)``), the
    dual problem of the paper (as the authors' code solves it) is::

        w = argmin_{w in simplex} F(w),  F(w) = g_w . g0 + k |g_w|,

    with ``g_w = w @ G``, i.e. ``g_w . g0 = w^T Gram 1 / T`` and
    ``|g_w|^2 = w^T Gram w``; the update is
    ``d = g0 + k / |g_w| g_w``, divided by ``1 + c^2`` (``rescale=1``),
    by ``1 + c`` (``rescale=2``) or not (``rescale=0``).

    Solver (deterministic, no iteration count to tune): at the optimum
    with ``s = |g_w| > 0`` the KKT conditions of ``F`` are those of the
    simplex QP ``min 1/2 w^T Gram w + t w^T Gram 1 / T`` with
    ``t = s / k``, so ``w`` is the QP solution ``w(t)`` at the root of
    ``phi(t) = k t - |g_w(t)|`` on ``(0, max_i |g_i| / k]``. Each QP is
    solved exactly by the active-set method. The root is found in a
    bracket by, in this order of preference: the exact root on the
    current support (there ``w(t)`` is affine in ``t``, so the root is
    that of a quadratic equation, exact once the support is right), an
    Illinois secant step (a step to ``t / 8`` while no point below the
    root is known), bisection; until ``|phi| <= 1e-12 k t``, or until the
    support's root is the current ``t`` to 1e-12 (for Gram matrices too
    ill-conditioned for the former). It takes 1 to 7 QPs on random and
    badly scaled problems, about 10 in the degenerate case below.

    When the root is ``|g_w| = 0`` (0 is in the convex hull and the
    optimum is there: fully conflicting gradients), or rather when
    ``|g_w| <= sqrt(eps) max_i |g_i|`` with ``eps`` of the input dtype
    (below that ``|g_w|`` is round-off of the Gram matrix), ``d = g0``, as
    in the authors' code (which divides by ``|g_w| + 1e-8``).

    ``c = 0`` gives exactly the mean (``g0 = 0`` the rescaled mean, a zero
    update). For T = 1 the base class returns the gradient unchanged (the
    authors' formula would give ``(1 + c) / (1 + c^2) g`` with
    ``rescale=1``).

    Args:
        c (float): The radius ``c`` of the paper (``alpha`` in the
            authors' code), >= 0. Defaults to 0.5.
        rescale (int): 0, 1 or 2, as above. Defaults to 1.
        tol (float): Relative tolerance of the root. Defaults to 1e-12.
        max_iter (int): Guard on the number of QPs solved.
            Defaults to 100.
    """

    def __init__(self,
                 c: float = 0.5,
                 rescale: int = 1,
                 tol: float = 1e-12,
                 max_iter: int = 100) -> None:
        if c < 0:
            raise ValueError(f'c must be >= 0, got {c}')
        if rescale not in (0, 1, 2):
            raise ValueError(f'rescale must be 0, 1 or 2, got {rescale}')
        self.c = c
        self.rescale = rescale
        self.tol = tol
        self.max_iter = max_iter

    def dual_weights(self,
                     gram: Tensor,
                     floor: float = 0.) -> Tuple[Tensor, float]:
        """The dual solution ``w`` and ``|g_w|`` (of the normalised Gram).

        Args:
            gram (Tensor): The Gram matrix, (T, T), T >= 2, divided by
                its largest diagonal entry.
            floor (float): Stop early once the root is known to have
                ``|g_w| <= floor`` (the degenerate case). Defaults to 0.

        Returns:
            tuple[Tensor, float]: ``w`` on the simplex and ``|g_w|``.
        """
        gram = gram.detach().to(device='cpu', dtype=torch.float64)
        b = gram.mean(1)  # Gram 1 / T: the inner products with g0
        k = self.c * math.sqrt(max(b.mean().item(), 0.))
        s_max = math.sqrt(max(gram.diagonal().max().item(), 0.))
        if not k > 0:  # c = 0 or g0 = 0: F is linear, d = g0 anyway
            w = gram.new_full((gram.shape[0], ), 1. / gram.shape[0])
            return w, math.sqrt(max((w @ gram @ w).item(), 0.))

        def solve(t, x0=None):
            w = active_set_qp(gram, t * b, simplex=True, x0=x0)
            return w, math.sqrt(max((w @ gram @ w).item(), 0.))

        lo, hi = 0., s_max / k
        phi_lo, phi_hi = None, 0.
        t = hi
        w, h = solve(t)
        side = 0
        for it in range(self.max_iter):
            phi = k * t - h
            if abs(phi) <= self.tol * k * t:
                break
            # keep the bracket lo < root < hi; Illinois: halve the value
            # of an end kept twice in a row
            if phi > 0:
                hi, phi_hi = t, phi
                if side == 1 and phi_lo is not None:
                    phi_lo *= 0.5
                side = 1
            else:
                lo, phi_lo = t, phi
                if side == -1:
                    phi_hi *= 0.5
                side = -1
            if hi - lo <= 1e-15 * hi or k * hi <= floor:
                # converged, or the root has |g_w| <= floor (degenerate)
                break
            cand = self._support_root(gram, b, k, w)
            if abs(cand - t) <= self.tol * t:
                # t is the root of its support: converged as far as the
                # conditioning of the Gram matrix allows
                break
            if not lo < cand < hi:
                if phi_lo is None:
                    # no point below the root yet: shrink geometrically
                    cand = hi / 8.
                else:
                    cand = lo - phi_lo * (hi - lo) / (phi_hi - phi_lo)
            if not lo < cand < hi or (it % 5 == 4 and phi_lo is not None):
                cand = 0.5 * (lo + hi)
            t = cand
            w, h = solve(t, w)
        return w, h

    @staticmethod
    def _support_root(gram: Tensor, b: Tensor, k: float, w: Tensor) -> float:
        """The root of ``phi`` if the support of ``w`` stays the same.

        On a fixed support ``F`` the QP solution is ``w0 + t z`` (the KKT
        system is linear in ``t``), so ``|g_w|^2`` is a quadratic in ``t``
        and ``k t = |g_w|`` has a closed-form root. Returns -1 when there
        is none (or the KKT system is singular); it is only a candidate,
        checked by the next QP.
        """
        free = (w > 0).nonzero().flatten()
        nf = free.numel()
        m = gram[free][:, free]
        kkt = gram.new_zeros(nf + 1, nf + 1)
        kkt[:nf, :nf] = m
        kkt[:nf, nf] = 1.
        kkt[nf, :nf] = 1.
        rhs = gram.new_zeros(nf + 1, 2)
        rhs[nf, 0] = 1.
        rhs[:nf, 1] = -b[free]
        sol, info = torch.linalg.solve_ex(kkt, rhs)
        if info.item() != 0 or not torch.isfinite(sol).all():
            return -1.
        w0, z = sol[:nf].T
        a0 = (w0 @ m @ w0).item()
        b0 = (w0 @ m @ z).item()
        c0 = (z @ m @ z).item()
        # |g_w(t)|^2 = a0 + 2 b0 t + c0 t^2 on this support; solve = k^2 t^2
        quad = k * k - c0
        disc = b0 * b0 + a0 * quad
        if quad <= 0 or disc < 0:
            return -1.
        return (b0 + math.sqrt(disc)) / quad

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        num_tasks = gram.shape[0]
        mean = gram.new_full((num_tasks, ), 1. / num_tasks)
        gram = normalized(gram)[0]
        g0_sq = gram.mean().item()
        if self.c == 0:
            return mean
        weights = mean
        if g0_sq > 0:
            k = self.c * math.sqrt(g0_sq)
            # below this |g_w| is at the round-off level of the Gram
            # matrix (|w^T Gram w| is only known to eps max_i |g_i|^2)
            floor = math.sqrt(torch.finfo(dtype).eps)
            w, gw_norm = self.dual_weights(gram, floor)
            if gw_norm > floor:
                weights = mean + (k / gw_norm) * w
        if self.rescale == 1:
            weights = weights / (1. + self.c**2)
        elif self.rescale == 2:
            weights = weights / (1. + self.c)
        return weights

    def extra_repr(self) -> str:
        return f'c={self.c}, rescale={self.rescale}'
