"""SharedResNet and SharedSwin: each the library's backbone, exactly, on
every task path; the sharing layer is the only reader of their internals."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmdet.models.backbones import ResNet, SwinTransformer
from torch.nn.modules.batchnorm import _BatchNorm

from mtl_pvt.analysis.cka import stage_features
from mtl_pvt.models import (SharedBackbone, SharedPVTv2, SharedResNet,
                            SharedSwin)
from mtl_pvt.testing.imports import package_modules

TASKS = ['cls', 'det', 'seg']
# stages 0-1 shared, then cls apart and det and seg together
TREE = [[TASKS]] * 2 + [[['cls'], ['det', 'seg']]] * 2
OUT = dict(cls=(3, ), det=(1, 2, 3))
BACKBONES = {
    'resnet':
    (SharedResNet, ResNet,
     dict(depth=18, base_channels=16, stem_channels=16, norm_eval=False)),
    'resnet_deep_stem': (SharedResNet, ResNet,
                         dict(
                             depth=50,
                             base_channels=8,
                             stem_channels=8,
                             deep_stem=True,
                             avg_down=True,
                             norm_eval=False)),
    'swin': (SharedSwin, SwinTransformer,
             dict(
                 embed_dims=16,
                 depths=[1, 1, 2, 1],
                 num_heads=[1, 2, 2, 4],
                 window_size=4,
                 drop_path_rate=0.1)),
}


def build(name, **kwargs):
    shared, plain, arch = BACKBONES[name]
    if 'share_stages' not in kwargs:
        kwargs.setdefault('stage_groups', TREE)
    torch.manual_seed(0)
    backbone = shared(TASKS, arch=arch, out_indices=OUT, **kwargs)
    backbone.init_weights()
    return backbone, plain, arch


def perturbed(backbone):
    """Every parameter and BN statistic moved by its own noise, so that the
    copies of a stage differ."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in list(backbone.parameters()) + [
                b for b in backbone.buffers() if b.is_floating_point()
        ]:
            t.add_(torch.rand(t.shape, generator=generator) * 0.1)
    return backbone


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_each_path_is_the_library_backbone(name):
    """shared_to_plain(task) loads into the library's class, which then
    returns what the task's path returns, bit for bit; plain_to_shared maps
    it back onto the task's copies."""
    backbone, plain_cls, arch = build(name)
    state = perturbed(backbone).eval().state_dict()
    x = torch.rand(2, 3, 64, 64)
    for task in TASKS:
        plain = plain_cls(**arch, out_indices=OUT.get(task, (0, 1, 2, 3)))
        plain.load_state_dict(backbone.shared_to_plain(state, task))
        plain.eval()  # mmdet's ResNet.train() returns None
        with torch.no_grad():
            expected, got = plain(x), backbone(x, task)
        assert len(expected) == len(got) == len(backbone.out_indices[task])
        for a, b in zip(expected, got):
            assert torch.equal(a, b)
        assert [o.shape[1] for o in got] == backbone.out_channels(task)
        # back: every key of the plain backbone onto the task's copies
        mapped = backbone.plain_to_shared(plain.state_dict())
        path = [
            f'stages.{i}.{copy_key}.'
            for i, (copy_key, _) in enumerate(backbone.task_stages(task))
        ]
        back = [k for k in mapped if any(k.startswith(p) for p in path)]
        assert len(back) == len(plain.state_dict())
        assert all(torch.equal(mapped[k], state[k]) for k in back)
        # the library's plain backbone through the CKA's stage features
        ours = stage_features(backbone, x, task)
        theirs = stage_features(plain, x)
        for i in backbone.out_indices[task]:
            assert torch.equal(ours[i], theirs[i])


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_forward_tasks_and_init(name):
    backbone, _, _ = build(name, share_stages=0)
    # init_weights copies one initialised backbone into every copy
    for copies in backbone.stages:
        first, *others = [c.state_dict() for c in copies.values()]
        for other in others:
            assert all(
                torch.equal(first[k], other[k]) for k in other if k in first)
    backbone, _, _ = build(name)
    perturbed(backbone).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        outs = backbone.forward_tasks(x, TASKS)
        for task in TASKS:
            for a, b in zip(outs[task], backbone(x, task)):
                assert torch.equal(a, b)


def test_swin_norm_only_where_a_task_reads_the_stage():
    """A copy holds mmdet's norm{i} when one of its tasks takes stage i's
    output, as a plain Swin of those out_indices has it."""
    backbone, _, _ = build('swin')
    has_norm = {
        (c.stage, c.key): 'norm' in c.module
        for c in backbone.stage_copies()
    }
    assert has_norm == {
        (0, 'cls_det_seg'): True,  # seg reads every stage
        (1, 'cls_det_seg'): True,
        (2, 'cls'): False,
        (2, 'det_seg'): True,
        (3, 'cls'): True,
        (3, 'det_seg'): True
    }
    cls_plain = backbone.shared_to_plain(backbone.state_dict(), 'cls')
    assert sorted({k.split('.')[0]
                   for k in cls_plain if k.startswith('norm')}) == ['norm3']


def test_resnet_frozen_stages_and_norm_eval_as_mmdet():
    arch = dict(depth=18, base_channels=8, stem_channels=8, frozen_stages=1)
    backbone = SharedResNet(TASKS, arch=arch, share_stages=1).train()
    plain = ResNet(**arch)
    plain.train()
    for copy in backbone.stage_copies():
        prefix = f'stages.{copy.stage}.{copy.key}.'
        expected = {k: p.requires_grad for k, p in plain.named_parameters()}
        mapped = backbone.plain_to_shared({k: k
                                           for k in expected
                                           })  # key -> its plain key
        for key, p in copy.module.named_parameters():
            assert p.requires_grad == expected[mapped[prefix + key]], key
    bns = [m for m in backbone.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)  # mmdet's norm_eval


def test_implementation_for_plain_backbones():
    assert SharedBackbone.implementation_for(ResNet(depth=18)) is SharedResNet
    swin = SwinTransformer(
        embed_dims=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4)
    assert SharedBackbone.implementation_for(swin) is SharedSwin
    assert SharedBackbone.implementation_for(torch.nn.Linear(1, 1)) is None
    with pytest.raises(ValueError, match='use_abs_pos_embed'):
        SharedSwin(TASKS, arch=dict(use_abs_pos_embed=True), share_stages=4)
    with pytest.raises(ValueError, match='num_stages=3'):
        SharedResNet(TASKS, arch=dict(depth=18, num_stages=3), share_stages=4)
    assert SharedPVTv2.plain_type == 'mmdet.PyramidVisionTransformerV2'


# What only a backbone may know: its stage modules (``stages[i]``), the
# copies' names (``group_key``), a tree's construction and a stage count.
INTERNALS = re.compile(r'stages\[|group_key|share_stages_groups|NUM_STAGES|'
                       r'\brange\(4\)|stage 0\.\.3')


def test_no_module_outside_the_backbones_reads_their_internals():
    """The package (but models/backbones/) and the tools."""
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    paths = [
        path for module, path in package_modules('mtl_pvt').items()
        if not module.startswith('mtl_pvt.models.backbones')
    ] + glob.glob(
        osp.join(repo, 'tools', '**', '*.py'), recursive=True)
    assert len(paths) > 100
    found = []
    for path in paths:
        for n, line in enumerate(open(path), 1):
            if INTERNALS.search(line):
                found.append(f'{osp.relpath(path, repo)}:{n}: {line.strip()}')
    assert not found, '\n'.join(found)
