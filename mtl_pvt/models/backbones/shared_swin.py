"""Swin Transformer whose stages are shared by groups of tasks."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.models.backbones.swin import swin_converter
from mmdet.models.layers import nchw_to_nlc, nlc_to_nchw

from mtl_pvt.registry import MODELS
from .shared_backbone import Part, SharedBackbone, StateDict

# the official classification head -> mmpretrain's LinearClsHead
OFFICIAL_HEAD = {'head.weight': 'head.fc.weight', 'head.bias': 'head.fc.bias'}


@MODELS.register_module()
class SharedSwin(SharedBackbone):
    """mmdet's ``SwinTransformer`` with stages shared by tasks.

    A :class:`SharedBackbone` of 4 stages. Stage 0 is the patch embedding
    (``patch_embed``, ``drop``) and the blocks of ``stages.0``; stage ``i``
    the patch merging that ends mmdet's ``stages.{i-1}`` (``downsample``)
    and the blocks of ``stages.{i}``. A stage's output is the blocks'
    output (NCHW); the task receives it through the stage's ``norm``
    (mmdet's ``norm{i}``), which a copy only holds when one of its tasks
    reads that stage (``out_indices``), as a plain backbone of those
    ``out_indices`` only has those norms. The next stage reads the output
    before the norm, as in mmdet's ``SwinTransformer.forward``.

    Examples:
        >>> backbone = dict(
        ...     type='SharedSwin',
        ...     arch=dict(embed_dims=96, depths=[2, 2, 6, 2],
        ...               num_heads=[3, 6, 12, 24], window_size=7,
        ...               drop_path_rate=0.2),
        ...     share_stages=4)

    Args:
        tasks (Sequence[str]): Task names.
        arch (dict): Arguments of mmdet's ``SwinTransformer`` without
            ``out_indices`` and ``init_cfg``; ``use_abs_pos_embed`` must be
            False (mmdet's default). Defaults to Swin-T.
        share_stages (int, optional): See :class:`SharedBackbone`.
        stage_groups (Sequence, optional): See :class:`SharedBackbone`.
        out_indices (dict[str, Sequence[int]], optional): See
            :class:`SharedBackbone`.
        init_cfg (dict, optional): mmdet's ``init_cfg`` of the plain
            backbone (with ``arch.convert_weights=True`` for the official
            checkpoint), applied to every copy. Defaults to None.
    """

    plain_type = 'mmdet.SwinTransformer'
    num_stages = 4
    default_arch = dict(
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        drop_path_rate=0.2)

    def check_arch(self, arch: dict) -> None:
        if arch.get('use_abs_pos_embed'):
            raise ValueError('SharedSwin shares stage modules; an absolute '
                             'position embedding (use_abs_pos_embed=True) '
                             'is a parameter outside them')
        if len(arch.get('depths', (2, 2, 6, 2))) != 4:
            raise ValueError('SharedSwin shares 4 stages, but arch.depths '
                             f'is {arch["depths"]}')
        if arch.get('frozen_stages', -1) >= 0:
            raise ValueError('SharedSwin trains every stage: frozen_stages '
                             'is not supported')

    @classmethod
    def stage_parts(cls, plain: nn.Module, stage: int) -> List[Part]:
        if stage == 0:
            first = [('patch_embed', 'patch_embed'),
                     ('drop', 'drop_after_pos')]
        else:
            first = [('downsample', f'stages.{stage - 1}.downsample')]
        return first + [('blocks', f'stages.{stage}.blocks'),
                        ('norm', f'norm{stage}')]

    def part_is_used(self, stage: int, name: Optional[str],
                     tasks: Sequence[str]) -> bool:
        return name != 'norm' or any(stage in self.out_indices[t]
                                     for t in tasks)

    @classmethod
    def plain_channels(cls, plain: nn.Module) -> List[int]:
        return list(plain.num_features)

    @classmethod
    def run_stage(cls, stage: int, module: nn.Module,
                  x: torch.Tensor) -> torch.Tensor:
        """One stage of mmdet's ``SwinTransformer.forward``: the patch
        embedding or merging, then the blocks; NCHW, before the norm."""
        if stage == 0:
            x, hw_shape = module['patch_embed'](x)
            x = module['drop'](x)
        else:
            x, hw_shape = module['downsample'](nchw_to_nlc(x), x.shape[2:])
        for block in module['blocks']:
            x = block(x, hw_shape)
        return nlc_to_nchw(x, hw_shape)

    @classmethod
    def stage_feature(cls, stage: int, module: nn.Module,
                      y: torch.Tensor) -> torch.Tensor:
        """The stage's norm on its output, as mmdet's ``norm{i}``."""
        if 'norm' not in module:
            return y
        return nlc_to_nchw(module['norm'](nchw_to_nlc(y)), y.shape[2:])

    @classmethod
    def official_to_plain(cls,
                          state: StateDict) -> Tuple[StateDict, StateDict]:
        """Split an official Swin checkpoint (microsoft's key layout) into
        mmdet's backbone keys (mmdet's ``swin_converter``) and mmpretrain's
        ``head.fc.*``."""
        head = {
            OFFICIAL_HEAD[k]: v
            for k, v in state.items() if k in OFFICIAL_HEAD
        }
        body = {k: v for k, v in state.items() if not k.startswith('head.')}
        converted = dict(swin_converter(body))
        # the official final norm is mmdet's norm3
        for key in list(converted):
            if key.startswith('norm.'):
                converted['norm3.' + key[len('norm.'):]] = converted.pop(key)
        return converted, head
