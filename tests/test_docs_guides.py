"""The developer guides of docs/developer do what they say: each guide's
code (its first ``python`` block) is written into a temporary module,
imported, and the method is trained one step through
``MultiTaskOptimWrapper`` on the tiny model and held to its defining
property. A guide whose code stops working fails here."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mtl_pvt.testing import make_mtl_batch, make_mtl_model
from mtl_pvt.testing.guides import guide_module as load_guide
from mtl_pvt.testing.tiny_mtl import REPO, to_float64

TOL = 1e-10  # float64 rounding, relative to the norm
_LOADED = {}


def guide_module(name, tmp_path_factory):
    """Import the guide's code (once)."""
    if name not in _LOADED:
        _LOADED[name] = load_guide(name, tmp_path_factory.mktemp('guide'))
    return _LOADED[name]


def step(method):
    """One SGD step of the float64 tiny model with ``method``; the
    gradients the optimizer got, each task's own gradients and losses."""
    model = to_float64(make_mtl_model(('a', 'b', 'seg')))
    batch = make_mtl_batch()
    model.train()
    torch.manual_seed(0)
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    own, losses = {}, {}
    for task in data['inputs']:
        model.zero_grad()
        total, _ = model.parse_losses(
            model.loss({task: data['inputs'][task]},
                       {task: data['data_samples'][task]}))
        total.backward()
        losses[task] = total.detach()
        own[task] = {
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        }
    model.zero_grad()
    wrapper = build_optim_wrapper(
        model,
        dict(
            type='mtl_pvt.MultiTaskOptimWrapper',
            optimizer=dict(type='SGD', lr=0.1),
            stats_interval=0,
            **method))
    got = {}
    original = wrapper.optimizer.step

    def record(*args, **kwargs):
        got.update((n, p.grad.clone()) for n, p in model.named_parameters()
                   if p.grad is not None)
        return original(*args, **kwargs)

    wrapper.optimizer.step = record
    torch.manual_seed(0)
    model.train_step(copy.deepcopy(batch), wrapper)
    shared = [n for n in got if n.startswith('backbone.')]
    return got, own, losses, shared


def flat(grads, names):
    return torch.cat([grads[n].reshape(-1) for n in names])


def assert_rel_close(got, expected):
    assert float((got - expected).norm() / expected.norm()) < TOL


def test_add_aggregator_guide(tmp_path_factory):
    guide_module('add_aggregator', tmp_path_factory)
    got, own, _, shared = step(dict(aggregator=dict(type='UnitSum')))
    rows = {t: flat(g, shared) for t, g in own.items()}
    expected = sum(row / row.norm() for row in rows.values())
    assert_rel_close(flat(got, shared), expected)


def test_add_loss_weighting_guide(tmp_path_factory):
    guide_module('add_loss_weighting', tmp_path_factory)
    got, own, losses, shared = step(
        dict(weighting=dict(type='InverseLossWeighting')))
    # the wrapper hands weightings float32 losses (rank-averaged); the
    # guide's arithmetic on them, as the method defines it
    values = torch.stack([losses[t].float() for t in own])
    inverse = 1 / values
    w = inverse * len(inverse) / inverse.sum()
    weights = {t: float(v) for t, v in zip(own, w)}
    expected = sum(weights[t] * flat(g, shared) for t, g in own.items())
    assert_rel_close(flat(got, shared), expected)
    # each task's own parameters get their own weighted gradient
    for task, grads in own.items():
        names = [n for n in grads if n.startswith(f'tasks.{task}.')]
        assert_rel_close(flat(got, names), weights[task] * flat(grads, names))


def test_add_backbone_guide(tmp_path_factory):
    """The guide's SharedConvNeXt: each task path is mmpretrain's ConvNeXt
    (its out_indices), bit for bit, through shared_to_plain."""
    from mmpretrain.models.backbones import ConvNeXt
    guide = guide_module('add_backbone', tmp_path_factory)
    arch = dict(
        arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 16, 32]),
        gap_before_final_norm=False)
    tasks = ['cls', 'det', 'seg']
    out = dict(cls=(3, ), det=(1, 2, 3))
    torch.manual_seed(0)
    backbone = guide.SharedConvNeXt(
        tasks,
        arch=arch,
        stage_groups=[[tasks]] * 2 + [[['cls'], ['det', 'seg']]] * 2,
        out_indices=out)
    backbone.init_weights()
    with torch.no_grad():
        for p in backbone.parameters():
            p.add_(torch.rand(p.shape) * 0.1)
    backbone.eval()
    state = backbone.state_dict()
    x = torch.rand(2, 3, 64, 64)
    for task in tasks:
        plain = ConvNeXt(**arch, out_indices=out.get(task, (0, 1, 2, 3)))
        plain.load_state_dict(backbone.shared_to_plain(state, task))
        plain.eval()
        with torch.no_grad():
            for a, b in zip(plain(x), backbone(x, task), strict=True):
                assert torch.equal(a, b)
    with pytest.raises(ValueError, match='gap_before_final_norm'):
        guide.SharedConvNeXt(tasks, arch=dict(arch='tiny'), share_stages=4)


@pytest.mark.parametrize('guide', [
    'add_aggregator', 'add_loss_weighting', 'add_backbone',
    'add_report_section'
])
def test_guides_are_linked_from_the_readme(guide):
    with open(osp.join(REPO, 'README.md')) as f:
        assert f'docs/developer/{guide}.md' in f.read()
