"""The developer guides of docs/developer do what they say: each guide's
code (its first ``python`` block) is written into a temporary module,
imported, and the method is trained one step through
``MultiTaskOptimWrapper`` on the tiny model and held to its defining
property. A guide whose code stops working fails here."""
import copy
import importlib.util
import os.path as osp
import re

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mtl_pvt.testing import make_mtl_batch, make_mtl_model
from mtl_pvt.testing.tiny_mtl import REPO, to_float64

TOL = 1e-10  # float64 rounding, relative to the norm
_LOADED = {}


def guide_module(name, tmp_path_factory):
    """Import the first python block of docs/developer/<name>.md (once)."""
    if name not in _LOADED:
        with open(osp.join(REPO, 'docs', 'developer', name + '.md')) as f:
            code = re.search(r'```python\n(.*?)```', f.read(), re.S).group(1)
        path = tmp_path_factory.mktemp('guide') / f'guide_{name}.py'
        path.write_text(code)
        spec = importlib.util.spec_from_file_location(f'guide_{name}', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _LOADED[name] = module
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


@pytest.mark.parametrize('guide', ['add_aggregator', 'add_loss_weighting'])
def test_guides_are_linked_from_the_readme(guide):
    with open(osp.join(REPO, 'README.md')) as f:
        assert f'docs/developer/{guide}.md' in f.read()
