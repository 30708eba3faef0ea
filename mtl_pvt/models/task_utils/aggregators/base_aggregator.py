"""The common interface of the multi-task gradient aggregators."""
import warnings
from abc import ABCMeta, abstractmethod
from typing import Any, Dict

import torch
from torch import Tensor


class BaseAggregator(metaclass=ABCMeta):
    """Base class of the gradient aggregators.

    An aggregator turns the per-task gradients ``G`` (shape (T, P), one row
    per task in the order of the task names) into one update direction.
    Every aggregator here is a linear combination ``w @ G`` of the rows,
    with coefficients ``w`` that depend on ``G`` only through the Gram
    matrix ``G @ G.T``. :meth:`combination` computes ``w`` from the Gram
    matrix, so that under DDP the caller can all-reduce the T x T partial
    Gram matrices of its gradient shards and combine its shards locally.

    Subclasses implement :meth:`_combination`, which receives the Gram
    matrix symmetrised, in float64 on the CPU, with T >= 2 and finite
    entries, and returns the float64 coefficients. The base class handles
    the rest:

    - T = 1: the coefficient is 1 (the gradient is returned unchanged) for
      every method, and the subclass is not called (its state, such as
      PCGrad's random stream, does not advance).
    - A Gram matrix with non-finite entries (an overflow under mixed
      precision): the coefficients are NaN, so that the aggregated
      gradient is non-finite and a loss scaler skips the step; the
      subclass is not called. (``Mean`` and ``Sum`` do not read the Gram
      matrix and keep their constant coefficients.)
    - The result has the dtype and device of the input.

    Attributes:
        stateless (bool): True when :meth:`state_dict` is always empty and
            the result depends on the input only.
        deterministic (bool): True when the result depends on the input
            (and the state) only, not on random draws; then it is also
            invariant to a permutation of the tasks (together with their
            per-task arguments, if any).
    """

    stateless: bool = True
    deterministic: bool = True

    @staticmethod
    def _check_gram(gram: Tensor) -> int:
        if gram.dim() != 2 or gram.shape[0] != gram.shape[1]:
            raise ValueError('the Gram matrix must be square (T, T), got '
                             f'shape {tuple(gram.shape)}')
        if gram.shape[0] == 0:
            raise ValueError('no task to aggregate (T = 0)')
        return gram.shape[0]

    def combination(self, gram: Tensor) -> Tensor:
        """The coefficients of the aggregated gradient.

        Args:
            gram (Tensor): The Gram matrix ``G @ G.T`` of the per-task
                gradients, shape (T, T).

        Returns:
            Tensor: ``w`` of shape (T, ), with the dtype and device of
            ``gram``, such that the aggregated gradient is ``w @ G``.
        """
        num_tasks = self._check_gram(gram)
        if num_tasks == 1:
            return torch.ones(1, dtype=gram.dtype, device=gram.device)
        gram64 = gram.detach().to(device='cpu', dtype=torch.float64)
        if not torch.isfinite(gram64).all():
            return torch.full((num_tasks, ),
                              float('nan'),
                              dtype=gram.dtype,
                              device=gram.device)
        gram64 = 0.5 * (gram64 + gram64.T)
        weights = self._combination(gram64, gram.dtype)
        return weights.to(device=gram.device, dtype=gram.dtype)

    @abstractmethod
    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        """Coefficients from a float64 CPU Gram matrix with T >= 2.

        Args:
            gram (Tensor): The symmetric, finite Gram matrix, (T, T).
            dtype (torch.dtype): The dtype of the caller's Gram matrix,
                for tolerances that depend on its precision.

        Returns:
            Tensor: float64 coefficients, shape (T, ).
        """

    def __call__(self, grads: Tensor) -> Tensor:
        """Aggregate the per-task gradients.

        Args:
            grads (Tensor): ``G``, shape (T, P), one row per task.

        Returns:
            Tensor: The aggregated gradient ``w @ G``, shape (P, ).
        """
        if grads.dim() != 2:
            raise ValueError('the gradients must have shape (T, P), got '
                             f'{tuple(grads.shape)}')
        if grads.shape[0] == 1:
            return grads[0].clone()
        work = grads
        if grads.dtype in (torch.float16, torch.bfloat16):
            work = grads.float()
        weights = self.combination(work @ work.T)
        return (weights.to(work.dtype) @ work).to(grads.dtype)

    def state_dict(self) -> Dict[str, Any]:
        """The state to save in a checkpoint.

        Returns:
            dict: Empty for a stateless aggregator.
        """
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict`.

        Args:
            state (dict): A dict returned by :meth:`state_dict`.
        """
        if state:
            warnings.warn(f'{type(self).__name__} has no state; ignoring '
                          f'the keys {sorted(state)}')

    def extra_repr(self) -> str:
        """The arguments shown by ``repr``."""
        return ''

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.extra_repr()})'
