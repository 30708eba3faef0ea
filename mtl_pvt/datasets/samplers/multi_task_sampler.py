"""Endless, seeded, rank-aware sampling of a :class:`MultiTaskDataset`.

Every task has its own endless index stream: epoch after epoch of a
permutation of its local indices, seeded by ``(seed, task, epoch)``; rank
``r`` of ``W`` reads the positions ``r, r + W, r + 2W, ...`` of it, as
``islice(stream, r, None, W)`` would. A batch takes the next micro-batch of
a task's shard, so the state of a run at step ``s`` is, per task, the number
of micro-batches drawn before ``s``. That number is a pure function of the
seed and ``s`` (closed form, or a replay of the cheap per-step task choices
for the random policies), hence :meth:`MultiTaskBatchSampler.set_position`.

The batch sampler's indices are :class:`~mtl_pvt.utils.randomness.SampleIndex`
integers that carry the seed of the sample's augmentations, a function of
``(seed, task, local index, epoch)`` only: the same sample in the same epoch
is augmented the same way whatever the other tasks, the number of ranks or
dataloader workers, and whether the run was resumed.
"""
import itertools
import logging
import math
import numbers
import zlib
from typing import Dict, Iterator, List, Optional

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from torch.utils.data import BatchSampler, Sampler

from mtl_pvt.registry import DATA_SAMPLERS
from mtl_pvt.utils.randomness import SampleIndex, derive_seed
from ..multi_task_dataset import MultiTaskDataset

MODES = ('joint', 'alternating')
POLICIES = ('round_robin', 'proportional', 'temperature', 'weights')
# Steps whose task choices one generator draws at once: seeking to step s
# draws s / CHUNK_STEPS such vectors, and no data.
CHUNK_STEPS = 1024
# Tags that keep the generators of permutations and task choices apart.
_PERMUTATION, _CHOICE = 0, 1


def _entropy(seed: int) -> int:
    """``seed`` as the non-negative integer that numpy's seeding takes."""
    return int(seed) % 2**64


def _task_key(task: str) -> int:
    """A stable integer of the task name (``hash`` is salted per process)."""
    return zlib.crc32(task.encode())


class _TaskStream:
    """One rank's shard of one task's endless index stream.

    Args:
        size (int): Number of samples of the task.
        offset (int): Global index of the task's first sample.
        key (list[int]): Seed entropy of the task; the epoch is appended.
        shuffle (bool): Whether each epoch is a fresh permutation.
        rank (int): This rank.
        world_size (int): Number of ranks.
    """

    def __init__(self, size: int, offset: int, key: List[int], shuffle: bool,
                 rank: int, world_size: int) -> None:
        self.size, self.offset, self.key = size, offset, key
        self.shuffle, self.rank, self.world_size = shuffle, rank, world_size
        # positions only grow, so the permutation in use is the only one
        # worth keeping
        self._epoch, self._order = -1, None

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            rng = np.random.default_rng([*self.key, epoch])
            self._epoch, self._order = epoch, rng.permutation(self.size)
        return self._order

    def take(self, start: int, num: int) -> np.ndarray:
        """Global indices at shard positions ``start`` to ``start + num``.

        Args:
            start (int): Position in this rank's shard.
            num (int): How many indices.

        Returns:
            np.ndarray: ``num`` global indices.
        """
        local, _ = self.take_local(start, num)
        return local + self.offset

    def take_local(self, start: int, num: int):
        """Local indices and their epochs at shard positions ``start`` to
        ``start + num``.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``num`` indices in the task's
            dataset, and the epoch of the task's stream each comes from.
        """
        pos = (start + np.arange(num)) * self.world_size + self.rank
        epochs, local = np.divmod(pos, self.size)
        if self.shuffle:
            # more than one epoch only when a micro-batch spans the end of
            # a dataset, or several for datasets smaller than a batch
            for epoch in np.unique(epochs).tolist():
                here = epochs == epoch
                local[here] = self._permutation(epoch)[local[here]]
        return local, epochs


@DATA_SAMPLERS.register_module()
class MultiTaskSampler(Sampler):
    """The per-task, rank-sharded index streams of a MultiTaskDataset.

    It is the ``sampler`` that :class:`MultiTaskBatchSampler` draws from.
    Iterated alone, it yields one index of every task in turn, endlessly.

    Args:
        dataset (MultiTaskDataset): The dataset.
        shuffle (bool): Whether every task-epoch is a fresh permutation.
            Defaults to True.
        seed (int, optional): Seed shared by all ranks; None draws one with
            ``sync_random_seed()``. Defaults to None.
        rank (int, optional): This rank; None reads ``get_dist_info()``.
            Defaults to None.
        world_size (int, optional): Number of ranks; None reads
            ``get_dist_info()``. Defaults to None.
    """

    def __init__(self,
                 dataset: MultiTaskDataset,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        if not isinstance(dataset, MultiTaskDataset):
            raise TypeError('MultiTaskSampler needs a MultiTaskDataset, but '
                            f'got a {type(dataset).__name__}')
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None \
            else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank must be in [0, world_size), but got '
                             f'rank={self.rank}, world_size={self.world_size}')
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else seed
        for task, size in dataset.task_sizes.items():
            if size == 0:
                raise ValueError(f'the dataset of task {task!r} is empty')

    @property
    def task_names(self) -> List[str]:
        """Task names, in the dataset's order."""
        return self.dataset.task_names

    def stream(self, task: str) -> _TaskStream:
        """A new reader of this rank's index stream of ``task``."""
        key = [_entropy(self.seed), _PERMUTATION, _task_key(task)]
        return _TaskStream(self.dataset.task_sizes[task],
                           self.dataset.task_offsets[task], key, self.shuffle,
                           self.rank, self.world_size)

    def __iter__(self) -> Iterator[int]:
        streams = [self.stream(task) for task in self.task_names]
        for start in itertools.count(0, CHUNK_STEPS):
            block = [s.take(start, CHUNK_STEPS) for s in streams]
            yield from np.stack(block, axis=1).ravel().tolist()

    def __len__(self) -> int:
        """Size of the dataset, as for MMEngine's ``InfiniteSampler``."""
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """Do nothing: the streams are endless and never restart."""


def _check_choice(name: str, value: str, valid: tuple) -> None:
    if value not in valid:
        raise ValueError(f'{name} must be one of {valid}, but got {value!r}')


def _check_task_keys(name: str, given: dict, tasks: List[str]) -> None:
    """Raise KeyError unless ``given`` has exactly the keys ``tasks``."""
    if not isinstance(given, dict):
        raise TypeError(f'{name} must be a dict task -> value, but got '
                        f'{given!r}')
    for task in given:
        if task not in tasks:
            raise KeyError(f'{name} has task {task!r}, which the dataset '
                           f'does not have (tasks: {tasks}); got {given}')
    for task in tasks:
        if task not in given:
            raise KeyError(f'{name} has no value for task {task!r}; got '
                           f'{given}')


def _task_batch_sizes(tasks: List[str], batch_size: Optional[int],
                      batch_sizes: Optional[dict]) -> Dict[str, int]:
    """Checked batch size of every task."""
    if batch_sizes is None:
        batch_sizes = {task: batch_size for task in tasks}
    else:
        _check_task_keys('batch_sizes', batch_sizes, tasks)
    for task, size in batch_sizes.items():
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) \
                or size <= 0:
            raise ValueError(f'the batch size of task {task!r} must be a '
                             f'positive integer, but got {size!r}')
    return {task: int(batch_sizes[task]) for task in tasks}


def _checked_weights(weights: Optional[dict], tasks: List[str]) -> np.ndarray:
    """The ``'weights'`` policy's weights in task order, checked."""
    if weights is None:
        raise ValueError("policy='weights' needs weights: a dict task -> "
                         'weight, but got None')
    _check_task_keys('weights', weights, tasks)
    for task in tasks:
        value = weights[task]
        if not isinstance(value, numbers.Real) or not value >= 0 \
                or not math.isfinite(value):
            raise ValueError(f'the weight of task {task!r} must be a '
                             f'finite number >= 0, but got {value!r}')
    if not any(weights.values()):
        raise ValueError(f'weights are all zero: {weights}')
    return np.asarray([weights[task] for task in tasks], np.float64)


def _task_weights(policy: str, sizes: Dict[str, int], temperature: float,
                  weights: Optional[dict]) -> Optional[np.ndarray]:
    """Unnormalised probability of each task per step; None: round robin."""
    if policy == 'round_robin':
        return None
    if policy == 'weights':
        return _checked_weights(weights, list(sizes))
    if policy == 'proportional':
        temperature = 1
    if not isinstance(temperature, numbers.Real) or not temperature > 0 \
            or not math.isfinite(temperature):
        raise ValueError('temperature must be a finite number > 0, but got '
                         f'{temperature!r}')
    # 'proportional' is temperature 1 through the same arithmetic, so that
    # both draw the same tasks; n / max(n) cannot overflow for small T
    sizes = np.asarray(list(sizes.values()), np.float64)
    return (sizes / sizes.max())**(1 / temperature)


class _Schedule:
    """Which tasks each step trains: a pure function of the seed and step.

    Args:
        tasks (list[str]): Task names.
        mode (str): ``'joint'`` or ``'alternating'``.
        weights (np.ndarray, optional): Unnormalised task probabilities of
            the random policies; None for round robin.
        seed (int): The seed shared by all ranks.
    """

    def __init__(self, tasks: List[str], mode: str,
                 weights: Optional[np.ndarray], seed: int) -> None:
        self.tasks, self.mode = tasks, mode
        self.weights = weights
        if weights is not None:
            self._cum_weights = np.cumsum(weights)
            # a draw rounded up to the total must not pick a task past the
            # last one with a positive weight
            self._last = int(np.flatnonzero(weights)[-1])
        self.seed = _entropy(seed)
        self._chunk_cache = (-1, None)

    def _chunk(self, chunk: int) -> np.ndarray:
        """Task positions chosen in steps ``chunk * CHUNK_STEPS`` onwards."""
        if self._chunk_cache[0] != chunk:
            rng = np.random.default_rng([self.seed, _CHOICE, chunk])
            draws = rng.random(CHUNK_STEPS) * self._cum_weights[-1]
            choice = np.searchsorted(self._cum_weights, draws, side='right')
            self._chunk_cache = (chunk, np.minimum(choice, self._last))
        return self._chunk_cache[1]

    def step_tasks(self, step: int) -> List[str]:
        """Task names that step ``step`` trains, in the dataset's order."""
        if self.mode == 'joint':
            return self.tasks
        if self.weights is None:
            return [self.tasks[step % len(self.tasks)]]
        chunk, pos = divmod(step, CHUNK_STEPS)
        return [self.tasks[self._chunk(chunk)[pos]]]

    def counts(self, step: int) -> np.ndarray:
        """Micro-batches of each task in the steps before ``step``."""
        num = len(self.tasks)
        if self.mode == 'joint':
            return np.full(num, step)
        if self.weights is None:
            return step // num + (np.arange(num) < step % num)
        full, rest = divmod(step, CHUNK_STEPS)
        counts = np.zeros(num, dtype=np.int64)
        for chunk in range(full):
            counts += np.bincount(self._chunk(chunk), minlength=num)
        if rest:
            counts += np.bincount(self._chunk(full)[:rest], minlength=num)
        return counts


@DATA_SAMPLERS.register_module()
class MultiTaskBatchSampler(BatchSampler):
    """Endless multi-task batches: joint or alternating steps.

    In ``'joint'`` mode every batch holds one micro-batch of every task
    (grouped by task, in the dataset's order). In ``'alternating'`` mode
    every batch holds one task's micro-batch, the task chosen by
    ``policy``: ``'round_robin'`` (the dataset's order, cyclically),
    ``'proportional'`` (p_t ~ n_t), ``'temperature'`` (p_t ~ n_t^(1/T)) or
    ``'weights'`` (p_t ~ weights[t]). The choice of step ``s`` is a function
    of the shared seed and ``s`` only, so every rank trains the same task in
    the same step. Each rank reads its own shard of every task's stream.

    :meth:`set_position` starts the next iterator at any step at once: the
    run continues exactly as if it had not stopped, without touching the
    samples of the skipped steps.

    Examples:
        >>> train_dataloader = dict(
        ...     batch_size=16,  # every task's, when batch_sizes is None
        ...     num_workers=2,
        ...     persistent_workers=True,
        ...     sampler=dict(type='MultiTaskSampler', shuffle=True),
        ...     batch_sampler=dict(
        ...         type='MultiTaskBatchSampler',
        ...         mode='alternating',
        ...         batch_sizes=dict(cls=16, det=8, seg=8),  # per GPU
        ...         policy='temperature',
        ...         temperature=2.0),
        ...     dataset=dict(
        ...         type='MultiTaskDataset',
        ...         datasets=dict(cls=cls_dataset, det=det_dataset,
        ...                       seg=seg_dataset)))

    Args:
        sampler (MultiTaskSampler): The per-task index streams.
        batch_size (int, optional): Batch size of every task when
            ``batch_sizes`` is None. Defaults to None.
        mode (str): ``'joint'`` or ``'alternating'``. Defaults to
            ``'joint'``.
        batch_sizes (dict[str, int], optional): Per-GPU batch size of each
            task. Defaults to None.
        policy (str): Task choice of the alternating mode. Defaults to
            ``'round_robin'``.
        temperature (float): T of the ``'temperature'`` policy. Defaults
            to 2.0.
        weights (dict[str, float], optional): Task weights of the
            ``'weights'`` policy. Defaults to None.
    """

    def __init__(self,
                 sampler: MultiTaskSampler,
                 batch_size: Optional[int] = None,
                 mode: str = 'joint',
                 batch_sizes: Optional[Dict[str, int]] = None,
                 policy: str = 'round_robin',
                 temperature: float = 2.0,
                 weights: Optional[Dict[str, float]] = None) -> None:
        if not isinstance(sampler, MultiTaskSampler):
            raise TypeError('MultiTaskBatchSampler needs a MultiTaskSampler, '
                            f'but got a {type(sampler).__name__}')
        _check_choice('mode', mode, MODES)
        _check_choice('policy', policy, POLICIES)
        tasks = sampler.task_names
        # no BatchSampler.__init__: batch_size may be None here
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = False
        self.mode, self.policy = mode, policy
        self.batch_sizes = _task_batch_sizes(tasks, batch_size, batch_sizes)
        task_weights = _task_weights(policy, sampler.dataset.task_sizes,
                                     temperature, weights)
        self._warn_unused(weights)
        self._schedule = _Schedule(tasks, mode,
                                   None if mode == 'joint' else task_weights,
                                   sampler.seed)
        self._start = 0

    def _warn_unused(self, weights: Optional[dict]) -> None:
        """Warn about arguments that the mode or policy ignores."""
        if self.mode == 'joint' and self.policy != 'round_robin':
            print_log(
                f'policy={self.policy!r} is ignored in joint mode',
                logger='current',
                level=logging.WARNING)
        elif weights is not None and self.policy != 'weights':
            print_log(
                f'weights are ignored by policy={self.policy!r}',
                logger='current',
                level=logging.WARNING)

    def set_position(self, step: int) -> None:
        """Make the iterators created from now on start at step ``step``.

        The first batch of such an iterator is the batch of step ``step``
        (0-based) of an uninterrupted run with the same seed, ranks and
        arguments. Nothing is replayed: the per-task counters come in closed
        form (joint, round robin) or from the task choices of the skipped
        steps, drawn ``CHUNK_STEPS`` at a time (random policies: about
        ``step / 1024`` small numpy draws), plus one permutation per task.
        Iterating does not move the position: every new iterator starts
        there. A DataLoader makes a new iterator of its batch sampler at
        every ``iter(loader)`` (workers and prefetched batches of the old
        one are reset), so call this before that.

        Args:
            step (int): The step (iteration) to start at, >= 0.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) \
                or step < 0:
            raise ValueError(f'step must be an integer >= 0, but got {step!r}')
        self._start = int(step)

    @property
    def task_probabilities(self) -> Optional[Dict[str, float]]:
        """Each task's probability of a step (random alternating policies);
        None for joint steps and round robin."""
        weights = self._schedule.weights
        if weights is None:
            return None
        return dict(
            zip(self.sampler.task_names, (weights / weights.sum()).tolist()))

    def task_counts(self, step: int) -> Dict[str, int]:
        """Micro-batches that each task got in the steps before ``step``."""
        counts = self._schedule.counts(step)
        return dict(zip(self.sampler.task_names, counts.tolist()))

    def step_tasks(self, step: int) -> List[str]:
        """Task names that the batch of step ``step`` holds, in order."""
        return list(self._schedule.step_tasks(step))

    def __iter__(self) -> Iterator[List[SampleIndex]]:
        step = self._start
        streams = {t: self.sampler.stream(t) for t in self.sampler.task_names}
        pos = {
            task: count * self.batch_sizes[task]
            for task, count in self.task_counts(step).items()
        }
        while True:
            batch = []
            for task in self._schedule.step_tasks(step):
                size = self.batch_sizes[task]
                local, epochs = streams[task].take_local(pos[task], size)
                offset = streams[task].offset
                batch.extend(
                    SampleIndex(i + offset, self.augment_seed(task, i, e))
                    for i, e in zip(local.tolist(), epochs.tolist()))
                pos[task] += size
            yield batch
            step += 1

    def augment_seed(self, task: str, index: int, epoch: int) -> int:
        """Seed of the augmentations of ``task``'s sample ``index`` (local)
        in epoch ``epoch`` of the task's stream."""
        return derive_seed(self.sampler.seed, 'augment', task, index, epoch)

    def __len__(self) -> int:
        """Steps of a nominal epoch, as for MMEngine's ``InfiniteSampler``.

        The steps after which this rank has drawn, on average, as many
        samples as the dataset holds.
        """
        tasks = self.sampler.task_names
        sizes = np.array([self.batch_sizes[t] for t in tasks], np.float64)
        if self.mode == 'joint':
            per_step = sizes.sum()
        elif self._schedule.weights is None:
            per_step = sizes.mean()
        else:
            weights = self._schedule.weights
            per_step = (weights * sizes).sum() / weights.sum()
        return math.ceil(len(self.sampler) / per_step)

    def set_epoch(self, epoch: int) -> None:
        """Do nothing: the streams are endless and never restart."""
