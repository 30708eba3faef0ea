"""Small synthetic batches of each task, as ``pseudo_collate`` gives them.

The data samples are those of the libraries' packing transforms
(mmpretrain's ``DataSample``, mmdet's ``DetDataSample``, mmseg's
``SegDataSample``) with the metainfo their models read, and each carries
its task name in ``metainfo['task']`` like samples of a multi-task dataset.
"""
from typing import List, Tuple

import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from mmpretrain.structures import DataSample
from mmseg.structures import SegDataSample


def _image(generator, size):
    return torch.randint(
        0, 256, (3, size, size), dtype=torch.uint8, generator=generator)


def cls_sample(generator, size=64, num_classes=4, task='cls'):
    """An image and a ``DataSample`` with a ground-truth label."""
    label = int(torch.randint(num_classes, (1, ), generator=generator))
    sample = DataSample(metainfo=dict(task=task, img_shape=(size, size)))
    return _image(generator, size), sample.set_gt_label(label)


def det_sample(generator, size=128, num_classes=4, task='det'):
    """An image and a ``DetDataSample`` with two ground-truth boxes."""
    xy = torch.randint(0, size // 2, (2, 2), generator=generator).float()
    wh = torch.randint(16, size // 2, (2, 2), generator=generator).float()
    sample = DetDataSample(
        metainfo=dict(
            task=task,
            img_id=0,
            img_shape=(size, size),
            ori_shape=(size, size),
            scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(
        bboxes=torch.cat([xy, xy + wh], dim=1),
        labels=torch.randint(num_classes, (2, ), generator=generator))
    return _image(generator, size), sample


def seg_sample(generator, size=128, num_classes=5, task='seg'):
    """An image and a ``SegDataSample`` with a blocky label map."""
    coarse = torch.randint(
        num_classes, (1, size // 16, size // 16), generator=generator)
    labels = coarse.repeat_interleave(16, 1).repeat_interleave(16, 2)
    sample = SegDataSample(
        metainfo=dict(
            task=task, img_shape=(size, size), ori_shape=(size, size)))
    sample.gt_sem_seg = PixelData(data=labels)
    return _image(generator, size), sample


SAMPLERS = dict(cls=cls_sample, det=det_sample, seg=seg_sample)


def task_batch(tasks: List[str], seed: int = 0) -> dict:
    """A ``pseudo_collate``-style batch with one sample per entry of
    ``tasks`` (e.g. ``['seg', 'cls', 'det', 'cls']``), in that order."""
    generator = torch.Generator().manual_seed(seed)
    pairs: List[Tuple] = [SAMPLERS[t](generator) for t in tasks]
    return dict(
        inputs=[image for image, _ in pairs],
        data_samples=[sample for _, sample in pairs])
