"""Mixed precision for :class:`MultiTaskOptimWrapper`."""
import torch
from mmengine.optim import AmpOptimWrapper

from mtl_pvt.registry import OPTIM_WRAPPERS
from .multi_task_optim_wrapper import MultiTaskOptimWrapper


@OPTIM_WRAPPERS.register_module()
class MultiTaskAmpOptimWrapper(MultiTaskOptimWrapper, AmpOptimWrapper):
    """:class:`MultiTaskOptimWrapper` with mmengine's mixed precision.

    Per-task gradients come out of backward scaled by the loss scale; they
    are divided by it (a power of two, so exactly) before the weighting and
    aggregation see them, and the combined gradient is scaled back, so the
    ``GradScaler`` finds infinities and skips steps as in
    ``AmpOptimWrapper``. Before the weighting's update the gradients are
    unscaled once and checked: on a step the scaler will skip (an
    overflow), the aggregator, per-task clipping and the weighting's
    update do not run either, so a skipped step changes nothing but the
    loss scale, as in ``AmpOptimWrapper``. A non-finite *loss* is not an
    overflow: it stops training (or skips the step) as in
    :class:`MultiTaskOptimWrapper`.

    Args:
        loss_scale, dtype: See ``AmpOptimWrapper``.
        **kwargs: See :class:`MultiTaskOptimWrapper`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._unscaled = False

    def _raw_backward(self, loss: torch.Tensor) -> None:
        self.loss_scaler.scale(loss).backward()

    def _grad_scale(self) -> float:
        return float(self.loss_scaler.get_scale())

    def _step_is_due(self) -> bool:
        """Unscale the gradients now (the scaler records an overflow) and
        say whether they are finite."""
        if not self.loss_scaler.is_enabled():
            return True
        self.loss_scaler.unscale_(self.optimizer)
        self._unscaled = True
        grads = [
            p.grad for group in self.optimizer.param_groups
            for p in group['params'] if p.grad is not None
        ]
        return not grads or bool(
            torch.stack([torch.isfinite(g).all() for g in grads]).all())

    def step(self, **kwargs) -> None:
        """``AmpOptimWrapper.step``, where :meth:`_step_is_due` may have
        unscaled the gradients already."""
        if self.clip_grad_kwargs:
            if not self._unscaled:
                self.loss_scaler.unscale_(self.optimizer)
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update(self._scale_update_param)
        self._unscaled = False
