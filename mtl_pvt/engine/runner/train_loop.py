"""An iteration-based train loop that resumes without replaying data."""
import copy
import logging
from typing import Iterator

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
# private, but the iterator IterBasedTrainLoop itself wraps its dataloader
# in: a resumed loop must iterate exactly as the parent does
from mmengine.runner.loops import _InfiniteDataloaderIterator

from mtl_pvt.registry import LOOPS
from mtl_pvt.utils.schedules import fit_schedules


class _SkipReplay:
    """Answers the first ``num`` ``next()`` calls without loading a batch.

    mmengine's ``IterBasedTrainLoop.run`` skips the batches of a resumed
    run by drawing them (``next()`` once per finished iteration, each call
    loading and collating a batch). When the batch sampler has been moved to
    the resumed iteration directly, those draws have nothing left to skip.
    """

    def __init__(self, iterator: Iterator, num: int):
        self._iterator = iterator
        self._num = num

    def __iter__(self):
        return self

    def __next__(self):
        if self._num > 0:
            self._num -= 1
            return None
        return next(self._iterator)


@LOOPS.register_module()
class MultiTaskIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume costs O(1) data loading.

    When the train dataloader's batch sampler can jump to an iteration
    (``set_position(iteration)``, as ``MultiTaskBatchSampler`` can), a
    resumed run starts its data where the interrupted run stopped, instead
    of loading and dropping every batch it already trained on (what the
    parent does: ``i`` batches for a run resumed at iteration ``i``). With
    any other batch sampler it behaves exactly as the parent.

    A run shorter than the config's parameter schedules (the first sanity
    check with ``train_cfg.max_iters=10``) gets them fitted to its length
    (:func:`mtl_pvt.utils.schedules.fit_schedules`, logged), here where
    every entry point passes (the Runner builds the schedulers after the
    loop), not only ``tools/train.py``.

    Args: as ``mmengine.runner.IterBasedTrainLoop``.
    """

    def __init__(self, runner, *args, **kwargs):
        super().__init__(runner, *args, **kwargs)
        schedulers = runner.param_schedulers
        listed = schedulers if isinstance(schedulers, list) else [schedulers]
        if not schedulers or not all(
                isinstance(s, dict) and 'type' in s for s in listed):
            return  # none, built already, or per optimizer: as configured
        cfg = Config(
            dict(
                train_cfg=dict(max_iters=self._max_iters),
                param_scheduler=copy.deepcopy(schedulers)))
        notes = fit_schedules(cfg)
        for level, message in notes:
            print_log(message, logger='current', level=level)
        if notes:  # changed: the Runner builds these
            runner.param_schedulers = cfg.param_scheduler

    def run(self):
        if self._iter > 0 and self._seek(self._iter):
            print_log(
                f'Moved the batch sampler to iteration {self._iter}; the '
                'skipped batches are not loaded.',
                logger='current',
                level=logging.INFO)
        return super().run()

    def _seek(self, iteration: int) -> bool:
        batch_sampler = getattr(self.dataloader, 'batch_sampler', None)
        if not hasattr(batch_sampler, 'set_position'):
            return False
        batch_sampler.set_position(iteration)
        # A new iterator draws from the moved sampler (the one made in
        # __init__ may already have prefetched batches of iteration 0).
        self.dataloader_iterator = _SkipReplay(
            _InfiniteDataloaderIterator(self.dataloader), iteration)
        return True
