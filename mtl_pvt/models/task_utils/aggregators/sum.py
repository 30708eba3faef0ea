"""Sum: the sum of the task gradients."""
import torch
from torch import Tensor

from mtl_pvt.registry import TASK_UTILS
from .base_aggregator import BaseAggregator


@TASK_UTILS.register_module()
class Sum(BaseAggregator):
    """The sum of the task gradients, ``w_i = 1``.

    The gradient of the sum of the task losses.
    """

    def combination(self, gram: Tensor) -> Tensor:
        """The coefficients 1, on the device of ``gram``.

        Args:
            gram (Tensor): The Gram matrix, shape (T, T); only its size is
                used.

        Returns:
            Tensor: ``w`` of shape (T, ), all ones.
        """
        num_tasks = self._check_gram(gram)
        return torch.ones(num_tasks, dtype=gram.dtype, device=gram.device)

    def _combination(self, gram: Tensor, dtype: torch.dtype) -> Tensor:
        return gram.new_ones(gram.shape[0])
