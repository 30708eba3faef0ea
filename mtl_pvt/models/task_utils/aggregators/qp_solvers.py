"""Small exact solvers on T x T Gram matrices, shared by the aggregators.

All functions work on float64 CPU tensors of a few (T <= ~20) variables.
They only read inner products of the task gradients, never the gradients.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

#: A task whose squared gradient norm is at most this times the largest
#: squared norm (that is, ``|g_i| <= 1e-12 max_j |g_j|``) counts as a zero
#: gradient.
ZERO_GRAD_TOL = 1e-24


def zero_rows(gram: Tensor) -> Tensor:
    """The tasks whose gradient is (numerically) zero.

    Args:
        gram (Tensor): The T x T Gram matrix.

    Returns:
        Tensor: Bool mask of shape (T, ), True for a zero gradient.
    """
    diag = gram.diagonal()
    return diag <= ZERO_GRAD_TOL * diag.max().clamp_min(0)


def _lstsq(a: Tensor, b: Tensor) -> Tensor:
    """Minimum-norm least-squares solution of ``a x = b`` (b is a vector)."""
    return torch.linalg.lstsq(a, b[:, None], driver='gelsd').solution[:, 0]


def active_set_qp(quad: Tensor,
                  lin: Optional[Tensor] = None,
                  lower: Optional[Tensor] = None,
                  simplex: bool = False,
                  x0: Optional[Tensor] = None,
                  tol: float = 1e-11,
                  max_iter: Optional[int] = None) -> Tensor:
    """Exact primal active-set method for a small convex QP.

    Solves ``min 1/2 x^T Q x + c^T x`` subject to ``x >= lower`` and, when
    ``simplex`` is True, ``sum(x) == 1`` (with ``lower = 0`` this is the
    probability simplex). ``Q`` must be symmetric positive semi-definite
    and the problem bounded below on the feasible set (true for every use
    here: ``c`` lies in the range of ``Q`` or the feasible set is compact).

    Each iteration solves the equality-constrained problem on the free
    variables (a KKT system, by minimum-norm least squares so that a
    singular ``Q`` is fine), steps until a bound blocks, and, at a
    sub-problem optimum, releases the bound with the most negative
    Lagrange multiplier. It stops when no multiplier ``mu_j`` is below
    ``-tol`` times the round-off scale of gradient entry ``j``
    (``sqrt(Q_jj) sum_k sqrt(Q_kk) |x_k| + |c_j|``), which is the exact
    KKT point up to round-off; this terminates in finitely many steps
    (``max_iter`` is only a guard against cycling on degenerate
    problems).

    Args:
        quad (Tensor): ``Q``, shape (n, n), float64.
        lin (Tensor, optional): ``c``, shape (n, ). Defaults to zeros.
        lower (Tensor, optional): Lower bounds, shape (n, ). Defaults to
            zeros.
        simplex (bool): Add the constraint ``sum(x) == 1``.
            Defaults to False.
        x0 (Tensor, optional): A feasible warm start. Defaults to ``lower``
            (or, with ``simplex``, the best vertex of the simplex).
        tol (float): Relative tolerance on the multipliers.
            Defaults to 1e-11.
        max_iter (int, optional): Iteration guard. Defaults to
            ``100 + 20 n``.

    Returns:
        Tensor: The minimiser, shape (n, ).
    """
    n = quad.shape[0]
    lin = quad.new_zeros(n) if lin is None else lin
    lower = quad.new_zeros(n) if lower is None else lower
    if max_iter is None:
        max_iter = 100 + 20 * n
    if x0 is not None:
        x = torch.maximum(x0.clone(), lower)
        if simplex:
            x = x / x.sum() if x.sum() > 0 else quad.new_full((n, ), 1. / n)
    elif simplex:
        # the vertex with the smallest objective
        x = quad.new_zeros(n)
        x[torch.argmin(0.5 * quad.diagonal() + lin)] = 1.
    else:
        x = lower.clone()
    active = x <= lower
    x[active] = lower[active]
    root_diag = quad.diagonal().clamp_min(0).sqrt()

    at_optimum = False
    released = -1
    for _ in range(max_iter):
        free = (~active).nonzero().flatten()
        if not at_optimum:
            nf = free.numel()
            if nf == 0:
                at_optimum = True
            else:
                grad = quad @ x + lin
                qff = quad[free][:, free]
                if simplex:
                    kkt = quad.new_zeros(nf + 1, nf + 1)
                    kkt[:nf, :nf] = qff
                    kkt[:nf, nf] = 1.
                    kkt[nf, :nf] = 1.
                    rhs = torch.cat([-grad[free], quad.new_zeros(1)])
                    step = _lstsq(kkt, rhs)[:nf]
                else:
                    step = _lstsq(qff, -grad[free])
                neg = step < 0
                alpha, block = 1., -1
                if neg.any():
                    cand = free[neg]
                    ratios = ((lower[cand] - x[cand]) / step[neg]).clamp_min(0)
                    r, k = ratios.min(0)
                    if r.item() < 1.:
                        alpha, block = r.item(), cand[k].item()
                x[free] = x[free] + alpha * step
                if block >= 0:
                    x[block] = lower[block]
                    active[block] = True
                    if block == released and alpha <= 1e-9:
                        # the released bound blocks at once: its negative
                        # multiplier was round-off, x is optimal
                        break
                    released = -1
                    continue
                at_optimum = True
        # at the optimum of the current working set: check multipliers
        act = active.nonzero().flatten()
        if act.numel() == 0:
            break
        grad = quad @ x + lin
        mult = grad[act]
        if simplex:
            mult = mult - grad[free].mean()
        # round-off scale of each gradient entry: sum_k |Q_jk x_k| + |c_j|
        # <= sqrt(Q_jj) sum_k sqrt(Q_kk) |x_k| + |c_j|
        mag = root_diag * (root_diag @ x.abs()) + lin.abs()
        mult_tol = tol * mag[act]
        if simplex:
            mult_tol = mult_tol + tol * mag[free].max()
        violated = mult < -mult_tol
        if not violated.any():
            break
        mult = torch.where(violated, mult, mult.new_tensor(float('inf')))
        released = act[mult.argmin()].item()
        active[released] = False
        at_optimum = False
    x = torch.maximum(x, lower)
    if simplex:
        x = x / x.sum()
    return x


def min_norm_simplex(gram: Tensor) -> Tensor:
    """The min-norm point of the convex hull of the rows of ``G``.

    Minimises ``w^T Gram w`` over the probability simplex: the closed form
    for T = 2, the exact active-set method otherwise.

    Args:
        gram (Tensor): The T x T Gram matrix (float64).

    Returns:
        Tensor: The simplex weights ``w``, shape (T, ).
    """
    t = gram.shape[0]
    if t == 1:
        return gram.new_ones(1)
    if t == 2:
        m11, m12, m22 = gram[0, 0], gram[0, 1], gram[1, 1]
        denom = m11 + m22 - 2 * m12
        if denom.item() <= 1e-15 * max(m11.item(), m22.item(), 1e-300):
            # identical gradients: every point of the segment is optimal
            return gram.new_full((2, ), 0.5)
        w1 = ((m22 - m12) / denom).clamp(0., 1.)
        return torch.stack([w1, 1. - w1])
    return active_set_qp(gram, simplex=True)


def normalized(gram: Tensor) -> Tuple[Tensor, float]:
    """``gram`` divided by its largest diagonal entry (1 if it is 0).

    Args:
        gram (Tensor): The T x T Gram matrix.

    Returns:
        tuple[Tensor, float]: The normalised matrix and the scale.
    """
    scale = gram.diagonal().max().item()
    if not scale > 0:
        return gram, 1.
    return gram / scale, scale
