"""How the inferencer prepares one input tensor for all tasks: its inputs
as a list, the normalisation each task's data preprocessor applies, and
the test scale of the config's pipelines."""
import math
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

import mmengine
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')


def inputs_to_list(inputs) -> list:
    """Inputs (an image path or array, a list of them, a directory) as a
    list: a directory gives its images, sorted.

    Raises:
        FileNotFoundError: Naming the first path that is no file.
        TypeError: An input that is neither a path nor an array.
    """
    if isinstance(inputs, (str, os.PathLike)) and osp.isdir(inputs):
        inputs = [
            osp.join(inputs, name) for name in sorted(os.listdir(inputs))
            if name.lower().endswith(IMG_EXTENSIONS)
        ]
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    inputs = [
        os.fspath(x) if isinstance(x, os.PathLike) else x for x in inputs
    ]
    for item in inputs:
        if isinstance(item, str) and '://' not in item \
                and not osp.isfile(item):
            raise FileNotFoundError(f'image not found: {item}')
        if not isinstance(item, (str, np.ndarray)):
            raise TypeError('inputs must be image paths or arrays, but '
                            f'got a {type(item).__name__}')
    return inputs


def normalization(preprocessor: nn.Module) -> dict:
    """How a task's data preprocessor turns an image into its input.

    Reads ``ClsDataPreprocessor``, ``DetDataPreprocessor`` (mmengine's
    ``ImgDataPreprocessor``) and ``SegDataPreProcessor`` alike.

    Returns:
        dict: ``mean`` and ``std`` (tuples, or None without normalisation),
        ``bgr_to_rgb`` (bool) and ``pad_value`` (float).
    """
    enabled = getattr(preprocessor, '_enable_normalize', False)
    flip = False
    for name in ('_channel_conversion', 'channel_conversion', 'to_rgb'):
        flip = flip or bool(getattr(preprocessor, name, False))
    pad_value = getattr(preprocessor, 'pad_value',
                        getattr(preprocessor, 'pad_val', 0))
    return dict(
        mean=tuple(preprocessor.mean.flatten().tolist()) if enabled else None,
        std=tuple(preprocessor.std.flatten().tolist()) if enabled else None,
        bgr_to_rgb=flip,
        pad_value=float(pad_value))


def config_test_scale(cfg: mmengine.Config,
                      tasks: Sequence[str]) -> Tuple[Optional[tuple], bool]:
    """``(scale, keep_ratio)`` of the first ``Resize`` with a ``scale`` in
    the test pipelines of ``tasks`` (in that order), or ``(None, True)``."""
    loaders = cfg.get('test_dataloader') or {}
    for task in tasks:
        dataset = (loaders.get(task) or {}).get('dataset') or {}
        for transform in dataset.get('pipeline') or []:
            kind = str(transform.get('type', '')).split('.')[-1]
            if kind == 'Resize' and transform.get('scale') is not None:
                scale = transform['scale']
                scale = tuple(scale) if isinstance(scale, Sequence) else scale
                return scale, bool(transform.get('keep_ratio', False))
    return None, True


def normalize_and_pad(img: np.ndarray, norm: dict, device,
                      divisor: int) -> Tuple[torch.Tensor, tuple, tuple]:
    """A BGR HWC image as the task preprocessors would give it: channels
    first, flipped to RGB and normalised as ``norm`` says
    (:func:`normalization`), padded at the bottom and right to multiples
    of ``divisor``.

    Returns:
        tuple: The (3, H', W') tensor, ``(h, w)`` before the padding and
        ``(pad_h, pad_w)``.
    """
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    x = x.to(device)
    if norm['bgr_to_rgb']:
        x = x[[2, 1, 0], ...]
    x = x.float()
    if norm['mean'] is not None:
        mean = x.new_tensor(norm['mean']).view(-1, 1, 1)
        x = (x - mean) / x.new_tensor(norm['std']).view(-1, 1, 1)
    h, w = x.shape[-2:]
    pad_h = math.ceil(h / divisor) * divisor - h
    pad_w = math.ceil(w / divisor) * divisor - w
    x = F.pad(x, (0, pad_w, 0, pad_h), value=norm['pad_value'])
    return x, (h, w), (pad_h, pad_w)


def shared_normalization(normalizations: dict, tasks: Sequence[str]) -> dict:
    """The normalisation (:func:`normalization`) that every task in
    ``tasks`` uses, of ``normalizations`` by task.

    Raises:
        ValueError: If two tasks' data preprocessors differ, listing each
            task's settings.
    """
    settings = {task: normalizations[task] for task in tasks}
    first = settings[tasks[0]]
    if any(value != first for value in settings.values()):
        table = ''.join(f'\n  {task}: {value}'
                        for task, value in settings.items())
        raise ValueError(
            'the data preprocessors of the tasks normalise differently, so '
            'one input tensor cannot serve them all; run the tasks '
            f'separately (tasks=[...]):{table}')
    return first
