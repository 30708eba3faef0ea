"""The extra no-grad forward that FAMO's official update needs."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mtl_pvt.registry import HOOKS
from mtl_pvt.structures import split_losses_by_task


@HOOKS.register_module()
class LossWeightingHook(Hook):
    """After each update, give the loss weighting the batch's new losses.

    FAMO (Liu et al. 2023) updates its task logits from how much each
    task's loss fell in the step, measured on the same batch: after the
    optimizer step, this hook runs the model once more on the step's batch
    without gradients and passes the per-task losses to
    ``MultiTaskOptimWrapper.update_after_step``. The forward runs under a
    forked RNG state, so the random streams of training (stochastic depth,
    samplers) are those of a run without the extra forward. It does
    nothing for weightings that do not ask for it (no extra cost).

    Examples:
        >>> custom_hooks = [dict(type='LossWeightingHook')]
    """

    priority = 'ABOVE_NORMAL'  # before the checkpoint hook saves the state

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        wrapper = runner.optim_wrapper
        if data_batch is None or not getattr(
                wrapper, 'awaits_losses_after_step', False):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        devices = [torch.cuda.current_device()] \
            if torch.cuda.is_available() else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            data = model.data_preprocessor(data_batch, True)
            losses = model(**data, mode='loss')
        wrapper.update_after_step(
            split_losses_by_task(losses, model.task_names))
