"""The base of a task kind: what mtl_pvt knows of one kind of task.

A *task* is a name in ``model.tasks`` (``imnet``, ``coco``, ...); its
*kind* (``cls``, ``det``, ``seg``) says which OpenMMLab library runs it and
so how mtl_pvt imports, measures, draws, serialises and exports it. Every
per-library fact lives in the kind's own module; code elsewhere asks the
task's kind (:func:`mtl_pvt.tasks.model_task_kinds`,
:func:`~mtl_pvt.tasks.config_task_kinds`) and never branches on a task
name or a library.
"""
import importlib
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn


def import_object(path: str) -> Any:
    """``'package.module.Name'`` -> the object, imported on first use (the
    kinds name their library's classes without importing the library)."""
    module, _, name = path.rpartition('.')
    return getattr(importlib.import_module(module), name)


def random_image(generator: torch.Generator, size: int) -> torch.Tensor:
    """A uint8 ``3 x size x size`` image from ``generator`` (of the
    kinds' :meth:`TaskKind.synthetic_sample`)."""
    return torch.randint(
        0, 256, (3, size, size), dtype=torch.uint8, generator=generator)


class TaskKind:
    """One kind of task. Subclasses set the class attributes and may
    override the methods; they register in ``TASK_KINDS`` under
    :attr:`name`.

    Attributes:
        name (str): The kind's name in configs (``task_kinds``) and on the
            command line (``--shape det=800,1333``).
        library (str): The OpenMMLab package and registry scope of its
            modules (``'mmdet'``); exported configs take it as
            ``default_scope``.
        model_base (str): Import path of the base class of its task models
            (a task model is of this kind iff it is an instance).
        sample_type (str): Import path of its data sample class.
        pred_field (str): The data sample field holding a prediction.
        main_metric (str): The metric the report and delta-m compare by
            default, as the library's evaluator names it.
        higher_is_better (bool): Direction of :attr:`main_metric`.
        input_shape (tuple[int, int]): ``(H, W)`` of the standard input for
            FLOPs (the library's own ``get_flops`` default).
        visualizer (dict): Config of the library visualiser that draws a
            prediction of this kind.
        draw_order (int): Kinds are drawn on one picture in increasing
            order (overlays first, text last).
        test_visualization_hook (dict): The library's visualisation hook,
            for an exported config's ``default_hooks``.
    """
    name: str = ''
    library: str = ''
    model_base: str = ''
    sample_type: str = ''
    pred_field: str = ''
    main_metric: str = ''
    higher_is_better: bool = True
    input_shape: Tuple[int, int] = (224, 224)
    visualizer: dict = {}
    draw_order: int = 0
    test_visualization_hook: dict = {}

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name={self.name!r})'

    # ------------------------------------------------------------ models --
    def model_class(self) -> type:
        """The base class of its task models."""
        return import_object(self.model_base)

    def sample_class(self) -> type:
        """Its data sample class."""
        return import_object(self.sample_type)

    def is_model(self, model: nn.Module) -> bool:
        """Whether ``model`` is a task model of this kind."""
        return isinstance(model, self.model_class())

    def flops_samples(self, shape: Sequence[int]) -> Optional[List]:
        """Data samples a task model reads in ``'tensor'`` mode for an
        input of ``(H, W)`` (one image), or None if it reads none."""
        return None

    # -------------------------------------------------------- predictions --
    def rescale_pred(self, sample, factor: int):
        """A copy of ``sample`` whose prediction fits the image enlarged
        ``factor`` times (an integer: nearest-neighbour maps stay exact),
        for drawing on it; the classification default changes nothing."""
        return sample

    def draw(self, visualizer, task: str, image: np.ndarray, sample,
             dataset_meta, pred_score_thr: float, topk: int) -> np.ndarray:
        """``image`` (RGB) with ``sample``'s prediction drawn by
        ``visualizer`` (built from :attr:`visualizer`).

        ``dataset_meta(num_labels)`` gives ``classes`` and ``palette`` for
        at least that many labels."""
        raise NotImplementedError

    def pred2dict(self, task: str, sample, classes: Sequence[str],
                  pred_out_dir: str, stem: str, topk: int) -> dict:
        """A JSON-friendly prediction of one image; files (if any) go under
        ``pred_out_dir/preds/`` named from ``stem``."""
        raise NotImplementedError

    # ------------------------------------------------------------- export --
    def export_model_cfg(self, cfg: dict, backbone, task: str) -> dict:
        """The task model config of an exported standalone model, given
        ``cfg`` with the plain PVT v2 backbone already in place: what the
        library cannot build of mtl_pvt's modules is replaced here."""
        return cfg

    # ------------------------------------------------------------ testing --
    def synthetic_sample(self, generator, size: int, num_classes: int,
                         task: str):
        """A random image (uint8, 3 x size x size) and a data sample with
        a ground truth, as the library's packing transform gives them."""
        raise NotImplementedError
