"""Mean: the average of the task gradients."""
import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator


@TASK_UTILS.register_module()
class Mean(BaseAggregator):
    """The mean of the task gradients, ``w_i = 1 / T``.

    The gradient of the average of the task losses (equal weighting).
    """

    def combination(self, gram: Tensor) -> Tensor:
        """The coefficients ``1 / T``, on the device of ``gram``.

        Args:
            gram (Tensor): The Gram matrix, shape (T, T); only its size is
                used.

        Returns:
            Tensor: ``w`` of shape (T, ) with ``w_i = 1 / T``.
        """
        num_tasks = self._check_gram(gram)
        return torch.full((num_tasks, ),
                          1. / num_tasks,
                          dtype=gram.dtype,
                          device=gram.device)

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        return gram.new_full((gram.shape[0], ), 1. / gram.shape[0])
