"""Small synthetic batches of tasks, as ``pseudo_collate`` gives them.

Each sample is the one its task's kind makes
(:meth:`mtl_pvt.tasks.TaskKind.synthetic_sample`: mmpretrain's
``DataSample``, mmdet's ``DetDataSample``, mmseg's ``SegDataSample``, as
the libraries' packing transforms give them) and carries its task name in
``metainfo['task']`` like samples of a multi-task dataset.
"""
from typing import List, Mapping, Optional, Tuple

import torch

from mtl_pvt.tasks import get_kind


def task_batch(tasks: List[str],
               seed: int = 0,
               kinds: Optional[Mapping[str, str]] = None,
               **sample_kwargs) -> dict:
    """A ``pseudo_collate``-style batch with one sample per entry of
    ``tasks`` (e.g. ``['seg', 'cls', 'det', 'cls']``), in that order.

    Args:
        tasks (list[str]): Task name of each sample.
        seed (int): Seed of the one generator that draws every sample in
            turn. Defaults to 0.
        kinds (Mapping[str, str], optional): Task name -> kind name; a
            task it leaves out is of the kind its name names. Defaults to
            None.
        **sample_kwargs: ``size``, ``num_classes`` for every sample;
            defaults: those of each kind's ``synthetic_sample``.

    Returns:
        dict: ``inputs`` (uint8 images) and ``data_samples``.
    """
    kinds = dict(kinds or {})
    generator = torch.Generator().manual_seed(seed)
    pairs: List[Tuple] = [
        get_kind(kinds.get(task, task)).synthetic_sample(
            generator, task=task, **sample_kwargs) for task in tasks
    ]
    return dict(
        inputs=[image for image, _ in pairs],
        data_samples=[sample for _, sample in pairs])
