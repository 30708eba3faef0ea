"""ResNet whose stages are shared by groups of tasks."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mtl_pvt.registry import MODELS
from .shared_backbone import Part, SharedBackbone, StateDict

# torchvision's classification head -> mmpretrain's LinearClsHead
OFFICIAL_HEAD = {'fc.weight': 'head.fc.weight', 'fc.bias': 'head.fc.bias'}


@MODELS.register_module()
class SharedResNet(SharedBackbone):
    """mmdet's ``ResNet`` with stages shared by tasks.

    A :class:`SharedBackbone` of 4 stages: stage 0 is the stem (``conv1``,
    ``bn1``, ReLU, or the deep ``stem`` of ResNetV1c/d), the max pooling
    and ``layer1``; stage ``i`` is ``layer{i + 1}``. A copy of stage 0 so
    keeps mmdet's keys under ``stages.0.{copy}.conv1.*``,
    ``...bn1.*``, ``...layer1.*``; the later stages are the residual layers
    themselves (``stages.{i}.{copy}.*``).

    ``frozen_stages`` and ``norm_eval`` of ``arch`` act as in mmdet's
    ``ResNet.train()``: the stem (``frozen_stages >= 0``) and
    ``layer1..layer{frozen_stages}`` of every copy stay in eval mode
    without gradients, and with ``norm_eval`` every BN layer keeps its
    running statistics. A multi-task model whose tasks include
    classification usually trains them all (``frozen_stages=-1``,
    ``norm_eval=False``, mmpretrain's recipe).

    Examples:
        >>> backbone = dict(
        ...     type='SharedResNet',
        ...     arch=dict(depth=50, norm_eval=False, frozen_stages=-1),
        ...     share_stages=2,
        ...     init_cfg=dict(type='Pretrained',
        ...                   checkpoint='torchvision://resnet50'))

    Args:
        tasks (Sequence[str]): Task names.
        arch (dict): Arguments of mmdet's ``ResNet`` (``depth``,
            ``norm_cfg``, ``norm_eval``, ``frozen_stages``, ``style``,
            ``deep_stem``, ``avg_down``...) without ``out_indices`` and
            ``init_cfg``. Defaults to ResNet-50 as mmdet builds it.
        share_stages (int, optional): See :class:`SharedBackbone`.
        stage_groups (Sequence, optional): See :class:`SharedBackbone`.
        out_indices (dict[str, Sequence[int]], optional): See
            :class:`SharedBackbone`.
        init_cfg (dict, optional): mmdet's ``init_cfg`` of the plain
            backbone, applied to every copy. Defaults to None.
    """

    plain_type = 'mmdet.ResNet'
    num_stages = 4
    default_arch = dict(depth=50)

    def check_arch(self, arch: dict) -> None:
        if arch.get('num_stages', 4) != 4:
            raise ValueError('SharedResNet shares the 4 stages of a ResNet, '
                             f'but arch has num_stages={arch["num_stages"]}')
        if 'depth' not in arch:
            raise ValueError('SharedResNet needs arch.depth (18, 34, 50, '
                             '101 or 152)')

    @classmethod
    def stage_parts(cls, plain: nn.Module, stage: int) -> List[Part]:
        if stage:
            return [(None, plain.res_layers[stage])]
        stem = ['stem'] if plain.deep_stem else \
            ['conv1', plain.norm1_name, 'relu']
        return [(name, name) for name in stem + ['maxpool', 'layer1']]

    @classmethod
    def plain_channels(cls, plain: nn.Module) -> List[int]:
        return [
            plain.block.expansion * plain.base_channels * 2**i
            for i in range(len(plain.res_layers))
        ]

    @classmethod
    def run_stage(cls, stage: int, module: nn.Module,
                  x: torch.Tensor) -> torch.Tensor:
        """One stage of mmdet's ``ResNet.forward``."""
        if stage:
            return module(x)
        if 'stem' in module:
            x = module['stem'](x)
        else:
            norm = next(m for k, m in module.items()
                        if k not in ('conv1', 'relu', 'maxpool', 'layer1'))
            x = module['relu'](norm(module['conv1'](x)))
        return module['layer1'](module['maxpool'](x))

    def _frozen(self) -> List[Tuple[int, Optional[str]]]:
        """(stage, part or None: the whole copy) that ``frozen_stages``
        freezes."""
        frozen = self.arch.get('frozen_stages', -1)
        out = []
        if frozen >= 0:
            # the stem: 'stem' (deep) or conv1 and its norm
            out += [(0, name) for name, _ in self._parts[0]
                    if name not in ('relu', 'maxpool', 'layer1')]
        if frozen >= 1:
            out.append((0, 'layer1'))
        out += [(i, None) for i in range(1, min(frozen, self.num_stages))]
        return out

    def train(self, mode: bool = True) -> 'SharedResNet':
        """Train mode, with mmdet's frozen stages and ``norm_eval``."""
        super().train(mode)
        if mode:
            frozen = self._frozen()
            for copy in self.stage_copies():
                for stage, part in frozen:
                    if stage == copy.stage:
                        m = copy.module if part is None else \
                            copy.module[part]
                        m.eval()
                        for p in m.parameters():
                            p.requires_grad = False
            if self.arch.get('norm_eval', True):
                for m in self.modules():
                    if isinstance(m, _BatchNorm):
                        m.eval()
        return self

    @classmethod
    def official_to_plain(cls,
                          state: StateDict) -> Tuple[StateDict, StateDict]:
        """Split a torchvision ResNet checkpoint (mmdet's key layout plus
        ``fc.*``) into the backbone and mmpretrain's ``head.fc.*``."""
        head = {
            OFFICIAL_HEAD[k]: v
            for k, v in state.items() if k in OFFICIAL_HEAD
        }
        return {k: v for k, v in state.items() if k not in OFFICIAL_HEAD}, head
