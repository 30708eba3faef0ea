"""Object detection (and instance segmentation): mmdet detectors."""
import torch
from mmengine.structures import InstanceData

from mtl_pvt.registry import TASK_KINDS
from .base import TaskKind, random_image


@TASK_KINDS.register_module(name='det')
class Detection(TaskKind):
    """mmdet detectors; the prediction is ``pred_instances`` (boxes, and
    masks for instance segmentation)."""
    name = 'det'
    library = 'mmdet'
    model_base = 'mmdet.models.detectors.BaseDetector'
    sample_type = 'mmdet.structures.DetDataSample'
    pred_field = 'pred_instances'
    main_metric = 'coco/bbox_mAP'
    higher_is_better = True
    # mmdet's get_flops default, 1280x800 (W x H)
    input_shape = (800, 1280)
    visualizer = dict(type='mmdet.DetLocalVisualizer')
    draw_order = 1
    test_visualization_hook = dict(type='DetVisualizationHook')

    def flops_samples(self, shape):
        """Two-stage detectors read ``img_shape`` in tensor mode (the RPN
        turns anchors into proposals)."""
        shape = tuple(shape)
        meta = dict(
            img_shape=shape,
            ori_shape=shape,
            pad_shape=shape,
            batch_input_shape=shape,
            scale_factor=(1., 1.))
        return [self.sample_class()(metainfo=meta)]

    def draw(self, visualizer, task, image, sample, dataset_meta,
             pred_score_thr, topk):
        labels = sample.pred_instances.labels
        visualizer.dataset_meta = dataset_meta(
            int(labels.max()) + 1 if len(labels) else 1)
        visualizer.add_datasample(
            task, image, sample, draw_gt=False, pred_score_thr=pred_score_thr)
        return visualizer.get_image()

    def rescale_pred(self, sample, factor):
        """Boxes times ``factor``; instance masks repeated."""
        sample = sample.clone()  # shallow: new fields, not in place
        instances = sample.pred_instances.clone()
        sample.pred_instances = instances
        instances.bboxes = instances.bboxes * factor
        if 'masks' in instances:
            instances.masks = instances.masks.repeat_interleave(
                factor, -1).repeat_interleave(factor, -2)
        return sample

    def pred2dict(self, task, sample, classes, pred_out_dir, stem, topk):
        """As mmdet's ``DetInferencer``: ``labels``, ``scores``, ``bboxes``
        (x1, y1, x2, y2 in the original image) and RLE ``masks`` if any."""
        from mmdet.structures.mask import encode_mask_results
        instances = sample.pred_instances.cpu()
        result = dict(
            labels=instances.labels.tolist(),
            scores=instances.scores.tolist(),
            bboxes=instances.bboxes.tolist())
        if 'masks' in instances:
            masks = encode_mask_results(instances.masks.numpy())
            for mask in masks:
                if isinstance(mask['counts'], bytes):
                    mask['counts'] = mask['counts'].decode()
            result['masks'] = masks
        return result

    def synthetic_sample(self, generator, size=128, num_classes=4, task='det'):
        """Two ground-truth boxes."""
        xy = torch.randint(0, size // 2, (2, 2), generator=generator).float()
        wh = torch.randint(16, size // 2, (2, 2), generator=generator).float()
        sample = self.sample_class()(
            metainfo=dict(
                task=task,
                img_id=0,
                img_shape=(size, size),
                ori_shape=(size, size),
                scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], dim=1),
            labels=torch.randint(num_classes, (2, ), generator=generator))
        return random_image(generator, size), sample
