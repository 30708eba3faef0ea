"""Semantic segmentation: mmseg segmentors."""
import os.path as osp

import numpy as np
import torch
from mmengine.structures import PixelData

from mtl_pvt.registry import TASK_KINDS
from .base import TaskKind, random_image


@TASK_KINDS.register_module(name='seg')
class Segmentation(TaskKind):
    """mmseg segmentors; the prediction is ``pred_sem_seg``."""
    name = 'seg'
    library = 'mmseg'
    model_base = 'mmseg.models.segmentors.BaseSegmentor'
    sample_type = 'mmseg.structures.SegDataSample'
    pred_field = 'pred_sem_seg'
    main_metric = 'mIoU'
    higher_is_better = True
    # mmseg's 512x512 crops
    input_shape = (512, 512)
    visualizer = dict(type='mmseg.SegLocalVisualizer', alpha=0.5)
    # the overlay goes under the other kinds' drawings
    draw_order = 0
    test_visualization_hook = dict(type='SegVisualizationHook')

    def draw(self, visualizer, task, image, sample, dataset_meta,
             pred_score_thr, topk):
        visualizer.dataset_meta = dataset_meta(
            int(sample.pred_sem_seg.data.max()) + 1)
        visualizer.add_datasample(task, image, sample, draw_gt=False)
        return visualizer.get_image()

    def rescale_pred(self, sample, factor):
        """The label map, each pixel repeated ``factor`` x ``factor``."""
        from mmengine.structures import PixelData
        sample = sample.clone()
        data = sample.pred_sem_seg.data
        sample.pred_sem_seg = PixelData(
            data=data.repeat_interleave(factor, -1).repeat_interleave(
                factor, -2))
        return sample

    def pred2dict(self, task, sample, classes, pred_out_dir, stem, topk):
        """``sem_seg``, the label map of the original image as nested
        lists, or with ``pred_out_dir`` a PNG at ``sem_seg_path``."""
        import mmcv
        sem_seg = sample.pred_sem_seg.data[0].cpu().numpy()
        if not pred_out_dir:
            return dict(sem_seg=sem_seg.tolist())
        path = osp.join(pred_out_dir, 'preds', f'{stem}.png')
        dtype = np.uint8 if sem_seg.max() < 256 else np.uint16
        mmcv.imwrite(sem_seg.astype(dtype), path)
        return dict(sem_seg_path=path)

    def synthetic_sample(self, generator, size=128, num_classes=5, task='seg'):
        """A blocky label map."""
        coarse = torch.randint(
            num_classes, (1, size // 16, size // 16), generator=generator)
        labels = coarse.repeat_interleave(16, 1).repeat_interleave(16, 2)
        sample = self.sample_class()(
            metainfo=dict(
                task=task, img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=labels)
        return random_image(generator, size), sample
