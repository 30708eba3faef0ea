"""A small b0 MultiTaskModel with free task names, and batches for it.

Tasks named ``seg`` get the demo Semantic FPN, every other name the demo
classifier, so ``('a', 'b', 'seg')`` is two classification tasks and one
segmentation task. Stochastic depth is off, so two forwards of one batch
are identical: what tests of optimisation need.
"""
import os.path as osp
from typing import Sequence

import torch
from mmengine.config import Config
from mmengine.registry import MODELS

from .batches import task_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_ARCH = dict(embed_dims=32, num_layers=[2, 2, 2, 2], drop_path_rate=0.)
_BASES = dict(cls='pvtv2_b0_demo_cls', seg='pvtv2_b0_demo_semfpn')


def tiny_kind(task: str) -> str:
    """The kind of a task of the tiny model: ``'seg'`` for ``seg``, else
    ``'cls'``."""
    return 'seg' if task == 'seg' else 'cls'


def demo_model_cfg(kind: str) -> dict:
    """The demo task model of ``kind`` (``'cls'`` or ``'seg'``)."""
    path = osp.join(REPO, 'configs/_base_/models', _BASES[kind] + '.py')
    return Config.fromfile(path)[f'{kind}_model']


def make_mtl_model(tasks: Sequence[str] = ('a', 'b', 'seg'),
                   seed: int = 0,
                   **backbone) -> torch.nn.Module:
    """A b0 MultiTaskModel, initialised from ``seed``.

    Args:
        tasks (Sequence[str]): Task names (``'seg'``: segmentation).
        seed (int): Seed of the initialisation. Defaults to 0.
        **backbone: ``share_stages`` (default 4) or ``stage_groups``.
    """
    from mtl_pvt import register_all_modules
    register_all_modules()
    if 'stage_groups' not in backbone:
        backbone.setdefault('share_stages', 4)
    torch.manual_seed(seed)
    model = MODELS.build(
        dict(
            type='mtl_pvt.MultiTaskModel',
            backbone=dict(
                type='mtl_pvt.SharedPVTv2', arch=TINY_ARCH, **backbone),
            tasks={t: demo_model_cfg(tiny_kind(t))
                   for t in tasks}))
    model.init_weights()
    return model


def to_float64(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in float64, its data preprocessor's float outputs too.

    The task models' preprocessors hand float32 images on (``.float()``);
    a float64 model compares two computations with 2^29 times less
    rounding, so a tolerance does not depend on the CPU's kernels.

    Returns:
        torch.nn.Module: The same model, converted in place.
    """
    from mmengine.utils import apply_to
    model.double()
    preprocess = model.data_preprocessor.forward

    def forward(data, training=False):
        return apply_to(
            preprocess(data, training),
            lambda x: isinstance(x, torch.Tensor) and x.is_floating_point(),
            lambda x: x.double())

    model.data_preprocessor.forward = forward
    return model


def make_mtl_batch(tasks: Sequence[str] = ('a', 'b', 'seg'),
                   per_task: int = 2,
                   seed: int = 0,
                   size: int = 64) -> dict:
    """A ``pseudo_collate`` batch: ``per_task`` samples of each task."""
    return task_batch([t for t in tasks for _ in range(per_task)],
                      seed,
                      kinds={t: tiny_kind(t)
                             for t in tasks},
                      size=size)


def mtl_optim_wrapper_cfg(amp: bool = False,
                          lr: float = 1e-3,
                          **method) -> dict:
    """A ``MultiTaskOptimWrapper`` (``amp``: ``MultiTaskAmpOptimWrapper``)
    config: AdamW, no gradient statistics, then ``method`` (a weighting,
    an aggregator, clipping, another ``optimizer``...) on top."""
    cfg = dict(
        type='mtl_pvt.MultiTaskAmpOptimWrapper'
        if amp else 'mtl_pvt.MultiTaskOptimWrapper',
        optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
        stats_interval=0)
    cfg.update(method)
    return cfg
