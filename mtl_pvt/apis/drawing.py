"""Drawing a multi-task prediction: a panel per task, each on its own
copy of the image, enlarged so that the libraries' labels can be read."""
import math
from typing import Callable, Mapping

import mmcv
import numpy as np
from mmdet.visualization.palette import get_palette

TITLE_HEIGHT = 32
GAP = 8


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """``image`` (RGB) under a white strip with ``title`` in black."""
    import cv2
    height = TITLE_HEIGHT
    strip = np.full((height, image.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(strip, title, (8, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                (0, 0, 0), 2, cv2.LINE_AA)
    return np.concatenate([strip, image.astype(np.uint8)], axis=0)


def class_colours(meta: Mapping, num_labels: int) -> dict:
    """``classes`` and a ``palette`` of as many colours from a task's
    dataset metainfo; label numbers as names where no class names are
    known, random colours where it has no palette for them all."""
    classes = list(meta.get('classes') or [])
    if len(classes) < num_labels:
        classes += [str(i) for i in range(len(classes), num_labels)]
    palette = meta.get('palette')
    if not isinstance(palette, (list, tuple)) or \
            len(palette) < len(classes):
        palette = 'random'
    palette = get_palette(
        list(palette) if palette != 'random' else palette, len(classes))
    return dict(
        classes=classes,
        palette=[
            tuple(int(c) for c in color) for color in palette[:len(classes)]
        ])


def draw_panels(image: np.ndarray, pred: Mapping, visualizers: Mapping,
                task_kinds: Mapping, dataset_meta: Callable[[str, int], dict],
                panel_size: int, pred_score_thr: float,
                topk: int) -> np.ndarray:
    """One panel per task, side by side (RGB).

    The image is enlarged by a whole factor (label maps stay exact) to at
    least ``panel_size`` pixels on its short side; each task's prediction,
    fitted to it (:meth:`TaskKind.rescale_pred`), is drawn on its own copy
    by its kind's visualiser (:meth:`TaskKind.draw`: mmseg's overlay,
    mmdet's boxes, mmpretrain's top-``topk`` class list), under a strip
    with the task's name.

    Args:
        visualizers (Mapping): Kind name -> visualiser, in drawing order.
        task_kinds (Mapping): Task -> :class:`TaskKind`.
        dataset_meta (callable): ``(task, num_labels)`` -> ``classes`` and
            ``palette``.
    """
    factor = max(1, math.ceil(panel_size / min(image.shape[:2])))
    big = mmcv.imrescale(image, float(factor), interpolation='bilinear') \
        if factor > 1 else image
    panels = []
    for name, visualizer in visualizers.items():
        for task, sample in pred.items():
            kind = task_kinds[task]
            if kind.name != name or kind.pred_field not in sample:
                continue
            drawn = kind.draw(
                visualizer,
                task,
                big.copy(),
                kind.rescale_pred(sample, factor),
                lambda n, task=task: dataset_meta(task, n),
                pred_score_thr,
                topk)
            panels.append(titled(drawn, f'{task} ({kind.name})'))
    if not panels:
        return big
    gap = np.full((panels[0].shape[0], GAP, 3), 255, dtype=np.uint8)
    return np.concatenate(
        [part for panel in panels for part in (panel, gap)][:-1], axis=1)
