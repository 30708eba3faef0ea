"""PVT v2 whose stages are shared by groups of tasks."""
from typing import List, Tuple

import torch
import torch.nn as nn
from mmdet.models.backbones.pvt import pvt_convert
from mmdet.models.layers import nlc_to_nchw

from mtl_pvt.registry import MODELS
from .shared_backbone import Part, SharedBackbone, StateDict

# Official classification head -> mmpretrain's LinearClsHead
OFFICIAL_HEAD = {'head.weight': 'head.fc.weight', 'head.bias': 'head.fc.bias'}


@MODELS.register_module()
class SharedPVTv2(SharedBackbone):
    """mmdet's ``PyramidVisionTransformerV2`` with stages shared by tasks.

    A :class:`SharedBackbone` whose stage ``i`` is ``layers[i]`` of mmdet's
    backbone (patch embedding, blocks and norm), in
    ``self.stages[i][group key]`` once per group of tasks in
    ``stage_groups[i]``. ``share_stages=k`` is the common case: stages
    ``0..k-1`` are shared by all tasks, stages ``k..3`` are copied per task.
    Each copy is a deep copy of one mmdet backbone, so the stochastic depth
    rate of every block is that of the plain backbone, and
    :meth:`init_weights` initialises all copies of a stage from one
    initialised (or pretrained) backbone.

    Examples:
        >>> backbone = dict(
        ...     type='SharedPVTv2',
        ...     tasks=['cls', 'det', 'seg'],
        ...     arch=dict(embed_dims=64, num_layers=[3, 4, 6, 3]),
        ...     share_stages=2,  # stages 0-1 shared, 2-3 per task
        ...     out_indices=dict(cls=(3, ), det=(0, 1, 2, 3),
        ...                      seg=(0, 1, 2, 3)),
        ...     init_cfg=dict(checkpoint='pvt_v2_b2.pth'))
        >>> # cls branches off after stage 2; det and seg share stage 3:
        >>> stage_groups = [[['cls', 'det', 'seg']]] * 3 + [[['cls'],
        ...                                                 ['det', 'seg']]]

    Args:
        tasks (Sequence[str]): Task names.
        arch (dict): Arguments of mmdet's ``PyramidVisionTransformerV2``
            (``embed_dims``, ``num_layers``, ``mlp_ratios``,
            ``drop_path_rate``...), without ``out_indices`` and
            ``init_cfg``. Defaults to b2.
        share_stages (int, optional): Number of leading stages shared by all
            tasks. Give this or ``stage_groups``. Defaults to None.
        stage_groups (Sequence[Sequence[Sequence[str]]], optional): For each
            of the 4 stages, the groups of tasks that share a copy of it.
            Defaults to None.
        out_indices (dict[str, Sequence[int]], optional): Stages whose
            outputs each task receives. Defaults to all four for every task.
        init_cfg (dict, optional): The backbone's ``init_cfg`` as mmdet's
            takes it (``dict(checkpoint=...)``, official PVT v2 key layout
            converted on load); applied to every copy. Defaults to None.
    """

    plain_type = 'mmdet.PyramidVisionTransformerV2'
    num_stages = 4

    @classmethod
    def stage_parts(cls, plain: nn.Module, stage: int) -> List[Part]:
        return [(None, f'layers.{stage}')]

    @classmethod
    def plain_channels(cls, plain: nn.Module) -> List[int]:
        return [plain.embed_dims * h for h in plain.num_heads]

    @classmethod
    def run_stage(cls, stage: int, module: nn.ModuleList,
                  x: torch.Tensor) -> torch.Tensor:
        """One stage of mmdet's ``PyramidVisionTransformer.forward``: patch
        embedding, blocks, norm, back to NCHW."""
        x, hw_shape = module[0](x)
        for block in module[1]:
            x = block(x, hw_shape)
        x = module[2](x)
        return nlc_to_nchw(x, hw_shape)

    @classmethod
    def official_to_plain(cls,
                          state: StateDict) -> Tuple[StateDict, StateDict]:
        """Split an official PVT v2 checkpoint (whai362's layout:
        ``patch_embed1.*``, ``block1.0.attn.q.*``, ``norm4.*``, ``head.*``)
        into mmdet's backbone keys (``layers.{i}.*``, mmdet's
        ``pvt_convert``) and the head as mmpretrain's ``LinearClsHead``
        names it (``head.fc.*``)."""
        head = {
            OFFICIAL_HEAD.get(k, k): v
            for k, v in state.items() if k.startswith('head.')
        }
        return dict(pvt_convert(state)), head
