"""Cheap checks of packed samples: labels in the task's class range, errors
that name the task and the file.

A label outside the class range otherwise fails inside the loss
(``IndexError: Target 199 is out of bounds``) or, in a validation PNG,
silently shifts mIoU; an unreadable image fails with the library's message
and no task. :func:`check_data_sample` reads the labels of an mmpretrain,
mmdet or mmseg data sample (``gt_label``, ``gt_instances.labels``,
``gt_sem_seg``) with a min/max over each tensor (under 1 % of a training
step, see ``benchmarks/data_check_cost.py``)::

    ValueError: task 'seg': data/ade/.../annotations/training/x.png: label
    value(s) [199] (3 pixels) outside the 5 classes 0..4 (255 is ignored)
"""
from typing import Any, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.structures import BaseDataElement

# mmseg's ignore index (reduce_zero_label maps 0 to it)
SEG_IGNORE_INDEX = 255
_PATH_KEYS = ('seg_map_path', 'img_path')

Limits = Tuple[Optional[int], int]  # (number of classes, ignore index)


def dataset_limits(dataset) -> Limits:
    """``(number of classes or None, ignore index)`` of a dataset, from its
    metainfo ``classes`` and (mmseg) ``ignore_index``."""
    metainfo = getattr(dataset, 'metainfo', None) or {}
    classes = metainfo.get('classes') if isinstance(metainfo, Mapping) \
        else None
    num = len(classes) if isinstance(classes, Sequence) and classes else None
    return num, int(getattr(dataset, 'ignore_index', SEG_IGNORE_INDEX))


def sample_path(sample) -> str:
    """The file a data sample comes from (label map first), for messages."""
    metainfo = getattr(sample, 'metainfo', {}) or {}
    for key in _PATH_KEYS:
        if metainfo.get(key):
            return str(metainfo[key])
    return '<unknown file>'


def _labels(sample) -> Sequence[Tuple[str, torch.Tensor, bool]]:
    """``(name, labels, may be ignored)`` of the label tensors of a sample.
    """
    found = []
    if not isinstance(sample, BaseDataElement):
        return found
    if 'gt_label' in sample:  # mmpretrain
        found.append(('class label', sample.gt_label, False))
    gt_instances = sample.get('gt_instances')
    if gt_instances is not None and 'labels' in gt_instances:  # mmdet
        found.append(('box label', gt_instances.labels, False))
    gt_sem_seg = sample.get('gt_sem_seg')
    if gt_sem_seg is not None and 'data' in gt_sem_seg:  # mmseg
        found.append(('label', gt_sem_seg.data, True))
    return found


def check_data_sample(sample: Any, task: str, limits: Limits) -> None:
    """Raise if a label of ``sample`` is outside the task's class range.

    Args:
        sample: A packed data sample (mmpretrain ``DataSample``, mmdet
            ``DetDataSample``, mmseg ``SegDataSample``).
        task (str): Its task, for the message.
        limits (tuple): ``(number of classes, ignore index)``, from
            :func:`dataset_limits`; nothing is checked without a number
            of classes.

    Raises:
        ValueError: Naming the task, the file, the value(s) and the range.
    """
    num_classes, ignore = limits
    if num_classes is None:
        return
    for name, labels, may_ignore in _labels(sample):
        labels = torch.as_tensor(labels)
        if labels.numel() == 0 or labels.is_floating_point():
            continue  # soft labels (mixup) are not indices
        if 0 <= int(labels.min()) and int(labels.max()) < num_classes:
            continue
        bad = (labels < 0) | (labels >= num_classes)
        if may_ignore:
            bad &= labels != ignore
        if not bool(bad.any()):
            continue
        values = torch.unique(labels[bad]).tolist()
        shown = values[:8] + (['...'] if len(values) > 8 else [])
        count = f' ({int(bad.sum())} pixels)' if may_ignore else ''
        ignored = f' ({ignore} is ignored)' if may_ignore else ''
        raise ValueError(
            f'task {task!r}: {sample_path(sample)}: {name} value(s) {shown}'
            f'{count} outside the {num_classes} classes 0..'
            f'{num_classes - 1}{ignored}')


def check_batch(data_batch: Mapping, task: str, limits: Limits) -> None:
    """:func:`check_data_sample` on every sample of a collated batch."""
    for sample in data_batch.get('data_samples') or []:
        check_data_sample(sample, task, limits)


def renamed_error(error: Exception, message: str) -> Exception:
    """``error``'s type with ``message`` (RuntimeError if the type cannot
    take one message), for ``raise renamed_error(e, msg) from e``."""
    try:
        return type(error)(message)
    except Exception:
        return RuntimeError(message)
