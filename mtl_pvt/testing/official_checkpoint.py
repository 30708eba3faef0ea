"""Synthetic PVT v2 checkpoints in the official (whai362) key layout.

Tests must not download the official ImageNet weights, but they should
exercise the same loading path: mmdet's ``PyramidVisionTransformerV2``
converts the official keys (``pvt_convert``) when ``init_cfg`` names a
checkpoint. :func:`to_official_layout` is the inverse of that conversion,
so a state dict of an mmdet backbone becomes a checkpoint that mmdet loads
back to the same tensors.
"""
import re
from collections import OrderedDict
from typing import Dict

import torch

_STAGE = re.compile(r'^layers\.(\d+)\.(\d)\.(.*)$')
_FFN = {'0.': 'fc1.', '1.': 'dwconv.dwconv.', '4.': 'fc2.'}


def _block_key(stage: int, rest: str, value: torch.Tensor, out: dict):
    """Official keys of one tensor of ``layers.{stage}.1.{j}.{...}``."""
    index, name = rest.split('.', 1)
    head = f'block{stage + 1}.{index}.'
    if name.startswith('attn.attn.in_proj_'):
        # mmdet concatenates q (C rows) and kv (2C rows)
        kind = name[len('attn.attn.in_proj_'):]
        dim = value.shape[0] // 3
        out[f'{head}attn.q.{kind}'] = value[:dim]
        out[f'{head}attn.kv.{kind}'] = value[dim:]
    elif name.startswith('attn.attn.out_proj.'):
        out[f'{head}attn.proj.{name[len("attn.attn.out_proj."):]}'] = value
    elif name.startswith('ffn.layers.'):
        layer = name[len('ffn.layers.'):]
        for mm_name, official in _FFN.items():
            if layer.startswith(mm_name):
                tail = layer[len(mm_name):]
                if official != 'dwconv.dwconv.' and tail == 'weight':
                    value = value.flatten(1)  # 1x1 conv -> linear
                out[f'{head}mlp.{official}{tail}'] = value
                return
        raise KeyError(f'unexpected FFN key {name}')
    else:  # norm1, norm2, attn.sr, attn.norm
        out[head + name] = value


def to_official_layout(state_dict: Dict[str, torch.Tensor],
                       num_classes: int = 1000,
                       seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    """Turn an mmdet ``PyramidVisionTransformerV2`` state dict into the
    official PVT v2 layout, with an ImageNet head (``head.weight``,
    ``head.bias``) of random values.

    Args:
        state_dict (dict): The backbone's ``state_dict()``.
        num_classes (int): Classes of the synthetic ImageNet head.
        seed (int): Seed of the head's values.

    Returns:
        OrderedDict: Keys such as ``patch_embed1.proj.weight``,
        ``block1.0.attn.q.weight``, ``norm4.bias``, ``head.weight``.
    """
    out = OrderedDict()
    last_dim = None
    for key, value in state_dict.items():
        match = _STAGE.match(key)
        if match is None:
            raise KeyError(f'{key} is not a PVT v2 backbone key')
        stage, part, rest = int(match[1]), match[2], match[3]
        if part == '0':
            rest = rest.replace('projection.', 'proj.')
            out[f'patch_embed{stage + 1}.{rest}'] = value
        elif part == '1':
            _block_key(stage, rest, value, out)
        else:
            out[f'norm{stage + 1}.{rest}'] = value
            last_dim = value.shape[0]
    generator = torch.Generator().manual_seed(seed)
    out['head.weight'] = torch.randn(
        num_classes, last_dim, generator=generator) * 0.02
    out['head.bias'] = torch.zeros(num_classes)
    return out
