"""Aligned-MTL: independent component alignment of the task gradients."""
from typing import Optional, Sequence

import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator
from .qp_solvers import normalized


@TASK_UTILS.register_module()
class AlignedMTL(BaseAggregator):
    """Aligned-MTL: the gradients aligned to an orthogonal, equal-norm set.

    Senushkin et al., "Independent Component Alignment for Multi-Task
    Learning", CVPR 2023.

    With the eigendecomposition ``Gram = G G^T = V diag(lambda) V^T``,
    ``B = sqrt(lambda_min) V diag(lambda)^{-1/2} V^T`` and the aligned
    gradients ``G' = B G`` (with ``G = V diag(sqrt(lambda)) R^T`` by SVD,
    ``G' = sqrt(lambda_min) V R^T``: all singular values equal
    ``sigma_min(G)``, the condition number is 1). The update is
    ``task_weights @ G'``, i.e. ``w = task_weights @ B``: the sum of the
    aligned gradients by default, as in Algorithm 1 of the paper and the
    authors' code (``reduction='mean'`` divides by T).

    Rank deficiency, as in the authors' code: eigenvalues at most
    ``rank_tol * lambda_max`` are dropped (their eigenvectors get weight
    0 in ``B``) and ``lambda_min`` is the smallest eigenvalue kept. The
    default ``rank_tol`` is ``T * eps`` of the input dtype (1.2e-7 for
    float32 gradients), the authors' ``max(lambda) * T * finfo.eps``;
    then the nonzero singular values of ``B G`` all equal the smallest
    nonzero singular value of ``G``. A zero gradient is a zero eigenvalue
    and is dropped this way; an all-zero Gram gives ``w = 0``.

    ``B`` is a matrix function of ``Gram`` (the spectral projectors are
    unique even for repeated eigenvalues), so the result does not depend
    on the eigenvector basis and is permutation-invariant.

    Args:
        reduction (str): ``'sum'`` or ``'mean'`` of the weighted aligned
            gradients. Defaults to ``'sum'``.
        task_weights (Sequence[float], optional): Weights of the aligned
            gradients, in the order of the tasks. Defaults to ones.
        scale_mode (str): The scale of ``B``: ``'min'`` (the paper,
            ``sqrt(lambda_min)``), ``'median'`` or ``'rmse'`` (the square
            root of the median / mean of the kept eigenvalues).
            Defaults to ``'min'``.
        rank_tol (float, optional): Relative eigenvalue threshold, see
            above. Defaults to ``T * finfo(dtype).eps``.
    """

    def __init__(self,
                 reduction: str = 'sum',
                 task_weights: Optional[Sequence[float]] = None,
                 scale_mode: str = 'min',
                 rank_tol: Optional[float] = None) -> None:
        if reduction not in ('sum', 'mean'):
            raise ValueError(
                f"reduction must be 'sum' or 'mean', got {reduction!r}")
        if scale_mode not in ('min', 'median', 'rmse'):
            raise ValueError("scale_mode must be 'min', 'median' or 'rmse', "
                             f'got {scale_mode!r}')
        self.reduction = reduction
        self.task_weights = None if task_weights is None else [
            float(x) for x in task_weights
        ]
        self.scale_mode = scale_mode
        self.rank_tol = rank_tol

    def alignment_matrix(self,
                         gram: Tensor,
                         dtype: Optional[torch.dtype] = None) -> Tensor:
        """The T x T matrix ``B`` such that ``G' = B G``.

        Args:
            gram (Tensor): The Gram matrix, shape (T, T).
            dtype (torch.dtype, optional): The precision of the gradients
                for the default ``rank_tol``. Defaults to ``gram.dtype``.

        Returns:
            Tensor: ``B``, float64, shape (T, T).
        """
        dtype = gram.dtype if dtype is None else dtype
        gram = gram.detach().to(device='cpu', dtype=torch.float64)
        gram = normalized(0.5 * (gram + gram.T))[0]
        num_tasks = gram.shape[0]
        eigval, eigvec = torch.linalg.eigh(gram)
        lam_max = eigval[-1].item()
        if not lam_max > 0:
            return torch.zeros_like(gram)
        rank_tol = num_tasks * torch.finfo(dtype).eps \
            if self.rank_tol is None else self.rank_tol
        kept = eigval > rank_tol * lam_max
        eigval, eigvec = eigval[kept], eigvec[:, kept]
        if self.scale_mode == 'min':
            scale = eigval.min()
        elif self.scale_mode == 'median':
            scale = eigval.median()
        else:
            scale = eigval.mean()
        return scale.sqrt() * (eigvec * eigval.rsqrt()) @ eigvec.T

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        num_tasks = gram.shape[0]
        if self.task_weights is None:
            task_weights = gram.new_ones(num_tasks)
        else:
            if len(self.task_weights) != num_tasks:
                raise ValueError(f'{len(self.task_weights)} task weights '
                                 f'for {num_tasks} tasks')
            task_weights = gram.new_tensor(self.task_weights)
        weights = task_weights @ self.alignment_matrix(gram, dtype)
        if self.reduction == 'mean':
            weights = weights / num_tasks
        return weights

    def extra_repr(self) -> str:
        return (f'reduction={self.reduction!r}, '
                f'scale_mode={self.scale_mode!r}')
