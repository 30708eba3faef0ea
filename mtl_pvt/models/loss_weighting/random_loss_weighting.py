"""Random Loss Weighting (Lin et al., TMLR 2022)."""
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor

from mtl_pvt.registry import MODELS
from .base_loss_weighting import BaseLossWeighting


@MODELS.register_module()
class RandomLossWeighting(BaseLossWeighting):
    """Weigh the tasks by a random softmax, drawn anew every step.

    Lin, Ye, Xu, Shi, Zhang and Kwok, "Reasonable Effectiveness of Random
    Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022 (first
    as "A Closer Look at Loss Weighting in Multi-Task Learning").

    For every optimizer update a vector ``z ~ N(0, I)`` over all tasks is
    drawn from the weighting's own ``torch.Generator``; with ``S`` the
    tasks present in the step and ``n = |S|``::

        w_t = n * exp(z_t) / sum_{j in S} exp(z_j)   (sum_to_num_tasks)
        w_t =     exp(z_t) / sum_{j in S} exp(z_j)   (sum_to_one)

    The paper's weights sum to one, which is our default divided by
    ``n``: the same direction with a learning rate ``n`` times smaller.
    ``sum_to_num_tasks`` keeps the scale of the plain sum of the losses
    (expected weight 1), so the learning rate of the equal-weight baseline
    carries over. With one task present the weight is 1 under either
    normalisation.

    :meth:`weights` is pure: the ``z`` of a step is drawn beforehand (at
    construction, then by each :meth:`update` for the next step). ``z`` is
    a buffer and the generator state extra state, so a restored weighting
    draws the same sequence. The draws do not depend on the losses nor on
    which tasks are present.

    Cost: one draw of ``T`` normal numbers per step.

    Distributed training: every rank seeds its generator with the same
    ``seed``, so all ranks draw the same weights (independent of the
    global torch seed, which differs between ranks under
    ``randomness=dict(diff_rank_seed=True)``).

    Args:
        tasks (Sequence[str]): Task names (given by the wrapper).
        seed (int): Seed of the own generator. Defaults to 0.
        normalize (str): ``'sum_to_num_tasks'`` or ``'sum_to_one'``, see
            above. Defaults to ``'sum_to_num_tasks'``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    NORMALIZE = ('sum_to_num_tasks', 'sum_to_one')

    def __init__(self,
                 tasks: Sequence[str],
                 seed: int = 0,
                 normalize: str = 'sum_to_num_tasks',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks, init_cfg=init_cfg)
        if normalize not in self.NORMALIZE:
            raise ValueError(f'normalize must be one of {self.NORMALIZE}, '
                             f'got {normalize!r}')
        self.seed = int(seed)
        self.normalize = normalize
        self.generator = torch.Generator()
        self.generator.manual_seed(self.seed)
        self.register_buffer('z', self._draw())

    def _draw(self) -> Tensor:
        return torch.randn(
            self.num_tasks, generator=self.generator, dtype=torch.float32)

    def weights(self, losses: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        checked = self._check_losses(losses)
        idx = [self._index[t] for t in checked]
        w = torch.softmax(self.z[idx], 0)
        if self.normalize == 'sum_to_num_tasks':
            w = w * len(idx)
        return self._output(dict(zip(checked, w.unbind())), losses)

    def update(self,
               losses: Mapping[str, Tensor],
               grad_norms: Optional[Mapping[str, Tensor]] = None) -> None:
        self._check_losses(losses)
        self.z.copy_(self._draw())

    def get_extra_state(self) -> Any:
        return dict(generator=self.generator.get_state())

    def set_extra_state(self, state: Any) -> None:
        self.generator.set_state(state['generator'].cpu())

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, seed={self.seed}, '
                f'normalize={self.normalize!r}')
