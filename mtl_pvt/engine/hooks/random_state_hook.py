"""Checkpoint the random number generators so that resume is exact."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from mtl_pvt.registry import HOOKS


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the RNG states of python, numpy and torch in checkpoints and
    restore them when training resumes.

    mmengine re-seeds a resumed run from ``randomness.seed``, so whatever
    draws from the global generators (a plain model's drop path and
    dropout, hooks, a plain dataset's augmentations with ``num_workers=0``)
    would draw other numbers than the interrupted run. ``MultiTaskModel``'s
    training forwards and ``MultiTaskBatchSampler``'s samples draw from
    streams seeded per task and iteration or per sample
    (:mod:`mtl_pvt.utils.randomness`), which need no state: with them, a
    resumed run ends with the weights of an uninterrupted one on the CPU
    in deterministic mode, with dataloader workers too.

    The states are restored in ``before_train``, after the train loop has
    built its dataloader iterator (which draws a seed of its own).
    """

    priority = 'VERY_LOW'

    def __init__(self):
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = dict(
            python=random.getstate(),
            numpy=np.random.get_state(),
            torch=torch.get_rng_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('random_state')

    def before_train(self, runner) -> None:
        # Only a resumed run continues the saved streams; a run that merely
        # starts from a checkpoint's weights (load_from) keeps its seed.
        if self._pending is None or runner.iter == 0:
            return
        random.setstate(self._pending['python'])
        np.random.set_state(self._pending['numpy'])
        torch.set_rng_state(self._pending['torch'])
        self._pending = None
