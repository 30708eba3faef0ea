"""Image classification: mmpretrain classifiers (``ImageClassifier``)."""
from typing import Mapping

import torch

from mtl_pvt.registry import TASK_KINDS
from .base import TaskKind, random_image

LIST_GAP = 'ListGlobalAveragePooling'


@TASK_KINDS.register_module(name='cls')
class Classification(TaskKind):
    """mmpretrain classifiers; the prediction is ``pred_score``."""
    name = 'cls'
    library = 'mmpretrain'
    model_base = 'mmpretrain.models.classifiers.BaseClassifier'
    sample_type = 'mmpretrain.structures.DataSample'
    pred_field = 'pred_score'
    main_metric = 'accuracy/top1'
    higher_is_better = True
    # mmpretrain's 224 crops
    input_shape = (224, 224)
    visualizer = dict(type='mmpretrain.UniversalVisualizer')
    # the class list goes on top of the other kinds' drawings
    draw_order = 2
    test_visualization_hook = dict(type='VisualizationHook', enable=False)

    def draw(self, visualizer, task, image, sample, dataset_meta,
             pred_score_thr, topk):
        scores = sample.pred_score.detach().cpu()
        visualizer.dataset_meta = dataset_meta(len(scores))
        shown = self.sample_class()().set_pred_score(scores).set_pred_label(
            scores.topk(min(topk, len(scores))).indices)
        return visualizer.visualize_cls(image, shown, draw_gt=False, name=task)

    def pred2dict(self, task, sample, classes, pred_out_dir, stem, topk):
        """``pred_label``, ``pred_score``, ``pred_class`` and the
        ``topk_labels``, ``topk_scores`` and ``topk_classes``."""
        scores = sample.pred_score.detach().float().cpu()
        values, labels = scores.topk(min(topk, len(scores)))
        name = (lambda i: classes[i] if i < len(classes) else None)
        label = int(sample.pred_label[0])
        return dict(
            pred_label=label,
            pred_score=float(scores[label]),
            pred_class=name(label),
            topk_labels=labels.tolist(),
            topk_scores=values.tolist(),
            topk_classes=[name(i) for i in labels.tolist()])

    def export_model_cfg(self, cfg, backbone, task):
        """mtl_pvt's ``ListGlobalAveragePooling`` neck becomes a list of two
        library modules, which MMEngine builds as a ``Sequential``: mmdet's
        ``DyHead`` with ``num_blocks=0`` (no parameters; it returns its
        list input as a tuple) and mmpretrain's ``GlobalAveragePooling``
        (which takes tuples, not lists). Outputs and state dict are those
        of the mtl_pvt neck."""
        neck = cfg.get('neck')
        if isinstance(neck, Mapping) and \
                str(neck.get('type')).split('.')[-1] == LIST_GAP:
            cfg['neck'] = plain_gap_neck(neck, backbone.out_channels(task)[-1])
        return cfg

    def synthetic_sample(self, generator, size=64, num_classes=4, task='cls'):
        label = int(torch.randint(num_classes, (1, ), generator=generator))
        sample = self.sample_class()(
            metainfo=dict(task=task, img_shape=(size, size)))
        return random_image(generator, size), sample.set_gt_label(label)


def plain_gap_neck(neck: Mapping, in_channels: int) -> list:
    """Library modules that replace ``ListGlobalAveragePooling``.

    Args:
        neck (dict): The ``ListGlobalAveragePooling`` config.
        in_channels (int): Channels of the last feature map (a required
            but unused argument of ``DyHead`` without blocks).

    Returns:
        list[dict]: ``[DyHead(num_blocks=0), GlobalAveragePooling]``.
    """
    return [
        dict(
            type='mmdet.DyHead',
            in_channels=in_channels,
            out_channels=in_channels,
            num_blocks=0),
        dict(type='mmpretrain.GlobalAveragePooling', dim=neck.get('dim', 2)),
    ]
