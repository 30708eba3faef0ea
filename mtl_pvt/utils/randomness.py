"""Random streams of their own: a task's, a sample's.

A multi-task step draws random numbers for several tasks in one process:
initial weights, augmentations, stochastic depth, dropout, batch
augmentations. Drawn from the global generators, each task's numbers would
depend on what the other tasks (and the dataloader workers) drew before, so
a task could never get the numbers of its single-task run. Here every draw
site seeds the generators from its own key, e.g. ``(seed, 'forward', task,
iteration)`` or ``(seed, 'augment', task, index, epoch)``, inside a scope
that puts the global generators back afterwards: a task's randomness is a
function of its key alone. A resumed run therefore draws what the
uninterrupted one drew, whatever the number of dataloader workers.
"""
import random
import zlib
from contextlib import contextmanager
from typing import Iterator, Optional, Union

import numpy as np
import torch

Key = Union[int, str]


def derive_seed(seed: int, *keys: Key) -> int:
    """A 64-bit seed from ``seed`` and a key path, e.g. ``('init', 'det')``.

    Args:
        seed (int): The run's seed.
        *keys (int | str): What the seed is for; strings are hashed
            stably (``zlib.crc32``, not the salted ``hash``).

    Returns:
        int: A seed in ``[0, 2**64)``; different keys give unrelated seeds
        (numpy's ``SeedSequence``).
    """
    entropy = [int(seed) % 2**64]
    for key in keys:
        if isinstance(key, str):
            # the tag keeps the string '3' and the integer 3 apart
            entropy += [1, zlib.crc32(key.encode())]
        else:
            entropy += [0, int(key) % 2**64]
    high, low = np.random.SeedSequence(entropy).generate_state(2).tolist()
    return high << 32 | low


def _cuda_device() -> Optional[int]:
    """The current CUDA device if CUDA is in use in this process."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.current_device()
    return None


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed python's, numpy's and torch's generators within the context.

    On exit the three generators (and the current CUDA device's) are back
    in their state before it, as if nothing had been drawn.

    Args:
        seed (int): A seed in ``[0, 2**64)``, e.g. :func:`derive_seed`'s.
    """
    python, numpy = random.getstate(), np.random.get_state()
    cpu = torch.random.default_generator.get_state()
    device = _cuda_device()
    cuda = torch.cuda.get_rng_state(device) if device is not None else None
    try:
        random.seed(seed)
        np.random.seed([seed >> 32, seed & 0xFFFFFFFF])
        torch.random.default_generator.manual_seed(seed)
        if device is not None:
            torch.cuda.default_generators[device].manual_seed(seed)
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        torch.random.default_generator.set_state(cpu)
        if device is not None:
            torch.cuda.set_rng_state(cuda, device)


class SampleIndex(int):
    """A dataset index that carries the seed of its sample's augmentations.

    ``MultiTaskBatchSampler`` yields these; ``MultiTaskDataset`` runs the
    sample's pipeline under :func:`seeded` with :attr:`seed`. Everywhere
    else it is the plain integer.

    Args:
        index (int): The index.
        seed (int): The seed of the sample's pipeline.
    """

    seed: int

    def __new__(cls, index: int, seed: int) -> 'SampleIndex':
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):
        # dataloader workers receive their indices pickled
        return SampleIndex, (int(self), self.seed)

    def __repr__(self) -> str:
        return f'SampleIndex({int(self)}, seed={self.seed})'
