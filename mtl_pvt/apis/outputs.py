"""What the inferencer writes: the RGB image and the name of an input,
and the JSON-friendly predictions of an image."""
import os.path as osp
from typing import Mapping, Optional, Tuple, Union

import mmcv
import mmengine
import numpy as np


def image_stem(img_path: Optional[str], index: int) -> str:
    """The output name of an image: its file's stem, else its number."""
    if img_path:
        return osp.splitext(osp.basename(img_path))[0]
    return f'{index:08d}'


def load_rgb(single_input: Union[str, np.ndarray],
             index: int) -> Tuple[np.ndarray, str]:
    """The original image in RGB and its output name."""
    if isinstance(single_input, str):
        image = mmcv.imfrombytes(mmengine.fileio.get(single_input))
        return image[..., ::-1], image_stem(single_input, index)
    return single_input[..., ::-1], image_stem(None, index)


def pred_to_dict(pred: Mapping,
                 task_kinds: Mapping,
                 dataset_meta: Mapping,
                 pred_out_dir: str = '',
                 topk: int = 5,
                 index: int = 0) -> dict:
    """JSON-friendly predictions of one image, by task, as each task's kind
    gives them (:meth:`TaskKind.pred2dict`).

    Classification: ``pred_label``, ``pred_score``, ``pred_class`` and the
    ``topk_labels``, ``topk_scores`` and ``topk_classes``. Detection (as
    mmdet's ``DetInferencer``): ``labels``, ``scores``, ``bboxes`` (x1, y1,
    x2, y2 in the original image) and RLE ``masks`` if any. Segmentation:
    ``sem_seg``, the label map of the original image as nested lists, or
    with ``pred_out_dir`` a PNG whose path is ``sem_seg_path``
    (``preds/<image>_<task>.png``).

    Args:
        pred (Mapping): Data samples by task.
        task_kinds (Mapping): Task -> :class:`TaskKind`.
        dataset_meta (Mapping): Task -> its dataset metainfo (``classes``).
        pred_out_dir (str): If given, write
            ``pred_out_dir/preds/<image>.json``. Defaults to ''.
        topk (int): Length of the top-k lists. Defaults to 5.
        index (int): Number of the image, its file name if it has no path.

    Returns:
        dict: ``{task: dict}``.
    """
    img_path = next(iter(pred.values())).metainfo.get('img_path')
    stem = image_stem(img_path, index)
    result = {}
    for task, sample in pred.items():
        kind = task_kinds[task]
        if kind.pred_field not in sample:
            raise ValueError(f'task {task!r}: its data sample has no '
                             f'{kind.pred_field} (the prediction of a '
                             f'{kind.name!r} task) to report')
        classes = dataset_meta.get(task, {}).get('classes')
        result[task] = kind.pred2dict(task, sample, classes or (),
                                      pred_out_dir, f'{stem}_{task}', topk)
    if pred_out_dir:
        mmengine.dump(result, osp.join(pred_out_dir, 'preds', f'{stem}.json'))
    return result
