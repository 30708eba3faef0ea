"""Save and stop when the job is asked to stop: preemption, time limits."""
import json
import logging
import os
import os.path as osp
import signal
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, barrier, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook

from mtl_pvt.engine.hooks.multi_task_checkpoint_hook import write_text_atomic
from mtl_pvt.registry import HOOKS

# sysexits.h EX_TEMPFAIL: a temporary failure, to be tried again
PREEMPTED_EXIT_CODE = 75
# written into the work dir by a run that stopped on a signal
PREEMPTED_FILE = 'preempted.json'


class TrainingPreempted(SystemExit):
    """Training stopped on a signal after saving a checkpoint; the exit
    code is :data:`PREEMPTED_EXIT_CODE`. ``checkpoint`` is the path to
    resume from (None if the run has none yet)."""

    def __init__(self, message: str, checkpoint: Optional[str]):
        super().__init__(PREEMPTED_EXIT_CODE)
        self.message = message
        self.checkpoint = checkpoint

    def __str__(self) -> str:
        return self.message


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stop training on SIGTERM or SIGUSR1 at the end of the iteration,
    with a checkpoint of that iteration.

    Slurm sends SIGTERM before it kills a job that is preempted or that
    reaches its time limit (and any signal ahead of the limit with
    ``--signal``); ``torchrun`` passes SIGTERM on to its workers; a plain
    ``kill`` sends it too. The signal handler only takes note. After the
    iteration (after the other hooks, the checkpoint hook included), every
    rank agrees on the note (one ``all_reduce`` per iteration under DDP),
    the checkpoint hook writes the checkpoint of that iteration (atomically
    with ``MultiTaskCheckpointHook``) unless it has just written it,
    ``preempted.json`` in the work dir records the iteration, the signal and
    the checkpoint, and the run raises :class:`TrainingPreempted`, which
    exits with code 75. ``tools/train.py --resume`` continues it; the
    resumed run ends with the weights of an uninterrupted one wherever an
    interval checkpoint's resume does (iteration-based loops).

    An epoch-based loop resumes at the start of an epoch (MMEngine), so a
    checkpoint from the middle of an epoch would train its first part
    twice: such a run stops without one, and resumes from its last epoch
    checkpoint. A validation due at the iteration of the signal is skipped.

    Handlers are installed in ``before_train`` (dataloader workers started
    later inherit them, so the signal does not kill them) and the previous
    ones restored in ``after_train``; SIGINT (Ctrl-C) is left alone.

    Examples:
        >>> default_hooks = dict(preemption=dict(type='PreemptionHook'))
        >>> # off: default_hooks = dict(preemption=None)

    Args:
        signals (Sequence[str]): Names of the signals that stop training.
            Defaults to ('SIGTERM', 'SIGUSR1').
    """

    priority = 'LOWEST'

    def __init__(self, signals: Sequence[str] = ('SIGTERM', 'SIGUSR1')):
        self.signals = []
        for name in signals:
            number = getattr(signal, str(name), None)
            if not isinstance(number, signal.Signals) or \
                    number in (signal.SIGKILL, signal.SIGSTOP):
                raise ValueError(f'PreemptionHook signals: {name!r} is not a '
                                 'signal that a process can catch')
            self.signals.append(number)
        self._received = 0
        self._previous = {}

    def _note(self, signum, frame) -> None:
        self._received = int(signum)

    def before_train(self, runner) -> None:
        if is_main_process():
            path = osp.join(runner.work_dir, PREEMPTED_FILE)
            if osp.isfile(path):  # of the run that this one resumes
                os.remove(path)
        self._received = 0
        for number in self.signals:
            self._previous[number] = signal.signal(number, self._note)

    def after_train(self, runner) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _agreed_signal(self) -> int:
        """The signal noted on any rank (0: none)."""
        if get_world_size() == 1:
            return self._received
        note = torch.tensor([self._received], dtype=torch.int64)
        all_reduce(note, op='max')
        return int(note.item())

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        signum = self._agreed_signal()
        if not signum:
            return
        name = signal.Signals(signum).name
        step = runner.iter + 1
        checkpoint = self._save(runner, step, batch_idx)
        barrier()
        if checkpoint is None:
            resume = 'no checkpoint yet: a rerun starts from the beginning'
        else:
            resume = f'resume from {checkpoint} with tools/train.py --resume'
        message = (f'{name} received: training stopped after iteration '
                   f'{step}; {resume}')
        if is_main_process():
            record = dict(
                signal=name,
                iteration=step,
                checkpoint=checkpoint,
                exit_code=PREEMPTED_EXIT_CODE)
            write_text_atomic(
                osp.join(runner.work_dir, PREEMPTED_FILE),
                json.dumps(record, indent=2))
        runner.logger.log(logging.WARNING, message)
        raise TrainingPreempted(message, checkpoint)

    def _save(self, runner, step: int, batch_idx: int) -> Optional[str]:
        """The checkpoint of iteration ``step``, written now unless the
        checkpoint hook just wrote it; for an epoch-based loop the last
        epoch checkpoint. None if there is none."""
        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        if not hooks:
            runner.logger.warning('PreemptionHook: the run has no '
                                  'CheckpointHook; nothing is saved')
            return None
        hook = hooks[0]
        last = runner.message_hub.get_info('last_ckpt')
        if hook.by_epoch:
            runner.logger.warning(
                'PreemptionHook: an epoch-based loop resumes at the start of '
                f'an epoch; the {batch_idx + 1} iteration(s) of epoch '
                f'{runner.epoch + 1} are not saved')
            return last
        name = hook.filename_tmpl.format(step)
        if last is None or osp.basename(last) != name:
            runner.logger.info(f'Saving checkpoint at {step} iterations '
                               '(stopping on a signal)')
            # the hook's own step and meta for the iteration, as its
            # after_train_iter would save them (private in mmengine 0.10)
            hook._save_checkpoint(runner)
            last = runner.message_hub.get_info('last_ckpt')
        return last
