"""Per-stage lookahead affinity: exactness, no side effects, sanity cases."""
import copy
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmpretrain.registry import MODELS as PRETRAIN_MODELS

from mtl_pvt import register_all_modules
from mtl_pvt.analysis.affinity import (BACKBONE, NotEnoughTasks,
                                       measure_affinity, stage_affinity)
from mtl_pvt.analysis.branching import suggest_tree
from mtl_pvt.testing.tiny_mtl import TINY_ARCH, demo_model_cfg, make_mtl_batch

STAGES = ['stage0', 'stage1', 'stage2', 'stage3']


@PRETRAIN_MODELS.register_module(force=True)
class AntiCrossEntropy(torch.nn.Module):
    """A positive loss that falls when the cross-entropy rises: the task
    works against classification on the same data. (A negated loss would
    not do: ``1 - L(after) / L(before)`` keeps its sign for a negative
    ``L``.)"""

    def forward(self, cls_score, label, avg_factor=None, **kwargs):
        return torch.exp(-F.cross_entropy(cls_score, label))


def build(tasks, anti=(), drop_path=0., seed=0, **backbone):
    """A tiny MTL model of classification tasks (and ``seg``); tasks in
    ``anti`` use :class:`AntiCrossEntropy`; every classification head
    starts as the first one's."""
    register_all_modules()
    backbone.setdefault('share_stages', 4)
    task_cfgs = {}
    for task in tasks:
        cfg = demo_model_cfg('seg' if task == 'seg' else 'cls')
        if task in anti:
            cfg.head.loss = dict(type='AntiCrossEntropy')
        task_cfgs[task] = cfg
    torch.manual_seed(seed)
    model = MODELS.build(
        dict(
            type='mtl_pvt.MultiTaskModel',
            backbone=dict(
                type='mtl_pvt.SharedPVTv2',
                arch=dict(TINY_ARCH, drop_path_rate=drop_path),
                **backbone),
            tasks=task_cfgs))
    model.init_weights()
    heads = [t for t in tasks if t != 'seg']
    for task in heads[1:]:
        model.tasks[task].head.load_state_dict(
            model.tasks[heads[0]].head.state_dict())
    return model


def same_data_batch(tasks, per_task=4, seed=0):
    """Every classification task gets the very samples of the first."""
    base = make_mtl_batch(('a', ), per_task=per_task, seed=seed)
    inputs, samples = [], []
    for task in tasks:
        for image, sample in zip(base['inputs'], base['data_samples']):
            sample = copy.deepcopy(sample)
            sample.set_metainfo(dict(task=task))
            inputs.append(image.clone())
            samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(scope='module')
def three_tasks():
    model = build(('a', 'b', 'seg'), drop_path=0.1)
    batch = make_mtl_batch(('a', 'b', 'seg'), per_task=2, size=32)
    return model, batch


def test_zero_step_measures_exactly_zero(three_tasks):
    """With lr 0 "after" equals "before" bit for bit: the ratio sees the
    same randomness (stochastic depth, the seg head's dropout and BN)."""
    model, batch = three_tasks
    record = measure_affinity(model, batch, lambda p: 0.)
    assert set(record['affinity']) == set(STAGES) | {BACKBONE}
    for matrix in record['affinity'].values():
        assert set(matrix) == {'a', 'b', 'seg'}
        for row in matrix.values():
            assert set(row) == {'a', 'b', 'seg'}
            assert all(z == 0. for z in row.values())
    assert set(record['grad_cos']['stage2']) == {'a-b', 'a-seg', 'b-seg'}


def test_measurement_leaves_no_trace(three_tasks):
    model, batch = three_tasks
    model.train()
    model.tasks['seg'].decode_head.eval()  # a module's own mode is kept
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    batch_before = copy.deepcopy(batch)
    torch.manual_seed(123)
    random.seed(4)
    np.random.seed(5)
    rng = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    measure_affinity(model, batch, lambda p: 0.1)
    # weights and BN statistics bit-identical, no .grad written
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in model.parameters())
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(torch.get_rng_state(), rng[0])
    assert random.getstate() == rng[1]
    assert np.array_equal(np.random.get_state()[1], rng[2][1])
    # the batch the training step gets is unchanged
    for image, before in zip(batch['inputs'], batch_before['inputs']):
        assert torch.equal(image, before)
    for sample, before in zip(batch['data_samples'],
                              batch_before['data_samples']):
        assert sample.metainfo.keys() == before.metainfo.keys()
    model.train()


def test_stage_lookahead_reruns_only_later_stages(three_tasks):
    """The per-stage value equals 1 - L(after) / L(before) computed with
    full forwards: reusing the features below the stage changes nothing."""
    model, batch = three_tasks
    lr = 0.05
    record = measure_affinity(model, batch, lambda p: lr)
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    x, samples = data['inputs']['b'], data['data_samples']['b']
    stage2 = list(model.backbone.stages[2]['a_b_seg'].parameters())

    def loss_b():
        torch.manual_seed(0)
        losses = model.loss({'b': x}, {'b': samples})
        return sum(v for k, v in losses.items() if 'loss' in k)

    from mtl_pvt.analysis.affinity import deterministic_training
    with deterministic_training(model):
        before = loss_b()
        grad_seg = torch.autograd.grad(
            (lambda ls: sum(v for k, v in ls.items() if 'loss' in k))(
                model.loss({'seg': data['inputs']['seg']},
                           {'seg': data['data_samples']['seg']})), stage2)
        saved = [p.detach().clone() for p in stage2]
        with torch.no_grad():
            for p, g in zip(stage2, grad_seg):
                p.sub_(g, alpha=lr)
            after = loss_b()
            for p, v in zip(stage2, saved):
                p.copy_(v)
    expected = 1. - after.item() / before.item()
    assert record['affinity']['stage2']['seg']['b'] == pytest.approx(
        expected, rel=1e-5, abs=1e-9)
    assert record['loss']['b'] == pytest.approx(before.item(), rel=1e-6)


def test_same_task_on_same_data_has_high_affinity_everywhere():
    """Two copies of one task: each one's step helps the other exactly as
    it helps itself, at every stage; they are grouped all the way."""
    model = build(('a', 'b'))
    batch = same_data_batch(('a', 'b'))
    record = measure_affinity(model, batch, lambda p: 0.05)
    for copy_name in STAGES + [BACKBONE]:
        matrix = record['affinity'][copy_name]
        assert matrix['a']['b'] > 0 and matrix['b']['a'] > 0
        assert matrix['a']['b'] == pytest.approx(matrix['a']['a'], rel=1e-5)
    for copy_name in STAGES:
        assert record['grad_cos'][copy_name]['a-b'] == pytest.approx(
            1., abs=1e-5)
    tree = suggest_tree(['a', 'b'],
                        [stage_affinity(record, s) for s in range(4)],
                        [1, 1, 1, 1])
    assert tree['stage_groups'] == [[['a', 'b']]] * 4


def test_task_against_another_objective_is_given_its_own_branch():
    """``c`` works against ``a`` and ``b`` (the same classification on the
    same data): negative affinity and opposed gradients at every stage, so
    the tree gives it its own branch from the first stage."""
    model = build(('a', 'b', 'c'), anti=('c', ))
    batch = same_data_batch(('a', 'b', 'c'))
    record = measure_affinity(model, batch, lambda p: 0.05)
    for copy_name in STAGES + [BACKBONE]:
        matrix = record['affinity'][copy_name]
        for other in ('a', 'b'):
            assert matrix['c'][other] < 0 and matrix[other]['c'] < 0
        assert matrix['a']['b'] > 0
    for copy_name in STAGES:
        # exactly opposed up to float32 backward rounding
        assert record['grad_cos'][copy_name]['a-c'] < -0.999
        assert record['grad_cos'][copy_name]['a-b'] == pytest.approx(
            1., abs=1e-5)
    tree = suggest_tree(['a', 'b', 'c'],
                        [stage_affinity(record, s) for s in range(4)],
                        [1, 1, 1, 1])
    assert tree['stage_groups'] == [[['a', 'b'], ['c']]] * 4


def test_partial_sharing_measures_shared_copies_only():
    model = build(('a', 'b', 'seg'),
                  share_stages=None,
                  stage_groups=[[['a', 'b', 'seg']], [['a', 'b', 'seg']],
                                [['a', 'b'], ['seg']], [['a'], ['b'],
                                                        ['seg']]])
    batch = make_mtl_batch(('a', 'b', 'seg'), per_task=1, size=32)
    record = measure_affinity(model, batch, lambda p: 0.05)
    assert set(
        record['affinity']) == {'stage0', 'stage1', 'stage2.a_b', BACKBONE}
    assert set(record['affinity']['stage2.a_b']) == {'a', 'b'}
    # seg's whole-backbone step reaches a and b through stages 0-1
    assert set(record['affinity'][BACKBONE]['seg']) == {'a', 'b', 'seg'}


def test_needs_two_tasks_sharing_a_stage():
    model = build(('a', 'b'), share_stages=0)
    with pytest.raises(NotEnoughTasks, match='at least two tasks'):
        measure_affinity(model, make_mtl_batch(('a', 'b')), lambda p: 0.1)
    model = build(('a', 'b'))
    with pytest.raises(NotEnoughTasks, match="holds \\['a'\\]"):
        measure_affinity(model, make_mtl_batch(('a', )), lambda p: 0.1)


def test_task_sharing_nothing_is_left_out():
    """seg runs its own backbone: no affinity to or from it, and no
    gradient is asked of it."""
    model = build(('a', 'b', 'seg'),
                  share_stages=None,
                  stage_groups=[[['a', 'b'], ['seg']]] * 4)
    batch = make_mtl_batch(('a', 'b', 'seg'), per_task=1, size=32)
    record = measure_affinity(model, batch, lambda p: 0.05)
    assert set(record['loss']) == {'a', 'b'}
    assert set(record['affinity']) == {f'stage{s}.a_b'
                                       for s in range(4)} | {BACKBONE}
    assert set(record['affinity'][BACKBONE]) == {'a', 'b'}
