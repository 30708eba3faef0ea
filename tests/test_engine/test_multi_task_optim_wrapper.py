"""MultiTaskOptimWrapper: per-task gradients, weighting, aggregation.

A b0 MultiTaskModel with two classification tasks (``a``, ``b``, the demo
classifier under free names) and the demo segmenter, stochastic depth off
so that two forwards of a batch are identical. The optimizer's ``step`` is
intercepted to record the gradients it receives.

The model runs in float64: two orders of summing the same terms (a joint
backward and per-task ones, one task after the other) round differently,
and in float32 by as much as 2e-4 on a 164-unit update on one CPU while
another rounds both the same way. In float64 that rounding is 2^29 times
smaller; the tolerances (1e-10 of each tensor's scale) leave it more than
four orders of magnitude of room on any CPU.
"""
import copy

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import TASK_UTILS

from mtl_pvt.engine.optimizers import task_parameters
from mtl_pvt.testing import make_mtl_batch as make_batch
from mtl_pvt.testing import make_mtl_model
from mtl_pvt.testing.tiny_mtl import to_float64

_BUILT = {}
# float64 rounding of a sum, relative to the scale of what is summed
TOL = 1e-10


def make_model(tasks=('a', 'b', 'seg'), **backbone):
    """A fresh float64 copy of the tiny model (each layout built once)."""
    key = (tuple(tasks), repr(sorted(backbone.items())))
    if key not in _BUILT:
        _BUILT[key] = make_mtl_model(tasks, **backbone)
    return to_float64(copy.deepcopy(_BUILT[key]))


def make_wrapper(model, **kwargs):
    cfg = dict(
        type='mtl_pvt.MultiTaskOptimWrapper',
        optimizer=dict(type='SGD', lr=0.1),
        stats_interval=0)
    cfg.update(kwargs)
    wrapper = build_optim_wrapper(model, cfg)
    wrapper.recorded = []
    step = wrapper.optimizer.step

    def recording_step(*args, **kw):
        wrapper.recorded.append({
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        })
        return step(*args, **kw)

    wrapper.optimizer.step = recording_step
    return wrapper


def train_step(model, wrapper, batch):
    model.train()
    torch.manual_seed(0)  # the seg head's dropout
    return model.train_step(copy.deepcopy(batch), wrapper)


def task_grads(model, batch):
    """Each task's own gradient of every parameter (separate backwards)."""
    grads = {}
    model.train()
    torch.manual_seed(0)
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    for task in data['inputs']:
        model.zero_grad()
        losses = model.loss({task: data['inputs'][task]},
                            {task: data['data_samples'][task]})
        total, _ = model.parse_losses(losses)
        total.backward()
        grads[task] = {
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        }
    model.zero_grad()
    return grads


def shared_names(model):
    return [
        n for n, _ in model.named_parameters() if n.startswith('backbone.')
    ]


def assert_rel_close(got, expected, tol=TOL):
    """Equal up to float64 rounding: the error is small against the norm."""
    error = float((got - expected).norm() / expected.norm())
    assert error < tol, error


def assert_close_to_scale(got, expected, msg=None):
    """Equal up to float64 rounding of the tensor's largest value."""
    scale = float(expected.abs().max())
    torch.testing.assert_close(
        got, expected, rtol=TOL, atol=TOL * scale, msg=msg)


def flat(grads, names):
    return torch.cat([grads[n].reshape(-1) for n in names])


def test_layout_covers_every_parameter_once():
    model = make_model(stage_groups=[[['a', 'b', 'seg']]] * 2 +
                       [[['a', 'b'], ['seg']]] * 2)
    layout = task_parameters(model)
    seen = [id(p) for ps in layout.own.values() for p in ps]
    seen += [id(p) for unit in layout.units for p in unit.params]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())
    assert [u.tasks for u in layout.units] == [('a', 'b', 'seg'), ('a', 'b')]
    assert [c.name for c in layout.shared_copies
            ] == ['stage0', 'stage1', 'stage2.a_b', 'stage3.a_b']
    per_stage = task_parameters(model, per='stage')
    assert len(per_stage.units) == 4
    assert layout.last_shared_copy().name == 'stage1'
    with pytest.raises(ValueError, match='no backbone stage is shared'):
        task_parameters(make_model(share_stages=0)).last_shared_copy()


def test_sum_aggregator_equals_the_joint_backward():
    model = make_model()
    batch = make_batch()
    plain = make_wrapper(model)
    before = copy.deepcopy(model.state_dict())
    train_step(model, plain, batch)
    model.load_state_dict(before)
    summed = make_wrapper(model, aggregator=dict(type='Sum'))
    train_step(model, summed, batch)
    expected, got = plain.recorded[0], summed.recorded[0]
    assert set(expected) == set(got)
    for name in expected:
        assert_close_to_scale(got[name], expected[name], msg=name)


def test_pcgrad_rows_are_each_tasks_gradient():
    model = make_model()
    batch = make_batch()
    grads = task_grads(model, batch)
    wrapper = make_wrapper(model, aggregator=dict(type='PCGrad', seed=3))
    train_step(model, wrapper, batch)
    got = wrapper.recorded[0]
    names = shared_names(model)
    G = torch.stack([flat(grads[t], names) for t in ('a', 'b', 'seg')])
    expected = TASK_UTILS.build(dict(type='mtl_pvt.PCGrad', seed=3))(G)
    assert_close_to_scale(flat(got, names), expected)
    # task-specific parameters keep their own task's gradient, unchanged
    for task in ('a', 'b', 'seg'):
        for name, grad in grads[task].items():
            if name.startswith(f'tasks.{task}.'):
                torch.testing.assert_close(got[name], grad, msg=name)


def test_uncertainty_weighting_scales_each_task():
    model = make_model()
    batch = make_batch()
    grads = task_grads(model, batch)
    wrapper = make_wrapper(
        model, weighting=dict(type='UncertaintyWeighting', init=0.5))
    train_step(model, wrapper, batch)
    got = wrapper.recorded[0]
    weight = torch.exp(torch.tensor(-0.5)).item()
    names = shared_names(model)
    expected = sum(weight * flat(grads[t], names) for t in grads)
    assert_rel_close(flat(got, names), expected)
    hub = MessageHub.get_current_instance()
    assert hub.get_scalar('train/mtl.weight.a').current() == \
        pytest.approx(weight)


@pytest.mark.parametrize('method', [
    dict(aggregator=dict(type='PCGrad')),
    dict(weighting=dict(type='GeometricLossStrategy')),
    dict(
        aggregator=dict(type='NashMTL'),
        weighting=dict(type='UncertaintyWeighting', init=0.3)),
])
def test_task_by_task_gives_the_joint_update(method):
    model = make_model()
    batch = make_batch()
    before = copy.deepcopy(model.state_dict())
    joint = make_wrapper(model, **copy.deepcopy(method))
    train_step(model, joint, batch)
    after_joint = copy.deepcopy(model.state_dict())
    model.load_state_dict(before)
    one_by_one = make_wrapper(
        model, task_by_task=True, **copy.deepcopy(method))
    log_vars = train_step(model, one_by_one, batch)
    assert 'loss' in log_vars and 'a.loss' in log_vars
    # The two orders round differently; an element whose task gradients
    # nearly cancel keeps an error of the rounding of the terms, not of
    # their sum: hence the tolerance on the scale of each tensor's update.
    for name, value in after_joint.items():
        if not value.is_floating_point():
            assert torch.equal(model.state_dict()[name], value), name
            continue
        update = float((value - before[name]).abs().max())
        torch.testing.assert_close(
            model.state_dict()[name],
            value,
            rtol=TOL,
            atol=TOL * update,
            msg=name)


def test_statistics_are_logged():
    model = make_model(share_stages=2)
    batch = make_batch()
    grads = task_grads(model, batch)
    wrapper = make_wrapper(model, stats_interval=1)
    train_step(model, wrapper, batch)
    hub = MessageHub.get_current_instance()
    names = [n for n in shared_names(model) if '.stages.1.' in n]
    a, b = flat(grads['a'], names), flat(grads['b'], names)
    cos = float(a @ b / (a.norm() * b.norm()))
    # a cosine is at most 1: its rounding is absolute
    assert hub.get_scalar('train/mtl.grad_cos.a-b.stage1').current() == \
        pytest.approx(cos, abs=TOL)
    assert hub.get_scalar('train/mtl.grad_norm.seg.stage1').current() == \
        pytest.approx(float(flat(grads['seg'], names).norm()), rel=TOL)
    # stats steps keep the update of a plain step
    assert not any('loss' in k
                   for k in hub.log_scalars if k.startswith('train/mtl.'))


def test_task_clip_grad_clips_each_task_by_its_own_norm():
    model = make_model()
    batch = make_batch()
    grads = task_grads(model, batch)
    wrapper = make_wrapper(
        model, aggregator=dict(type='Sum'), task_clip_grad=dict(max_norm=0.1))
    train_step(model, wrapper, batch)
    got = wrapper.recorded[0]
    names = shared_names(model)
    expected = 0
    for task, g in grads.items():
        own = [n for n in g if n.startswith(f'tasks.{task}.')]
        # clip_grad_norm_'s arithmetic: the norm of the per-tensor norms
        # (the task's own tensors and its row of the shared unit); a float32
        # norm of the concatenation rounds differently (3e-4 on 3.4M values)
        norm = torch.stack([g[n].norm()
                            for n in own] + [flat(g, names).norm()]).norm()
        coef = min(1., 0.1 / (float(norm) + 1e-6))
        expected = expected + coef * flat(g, names)
        assert_rel_close(flat(got, own), coef * flat(g, own))
    assert_rel_close(flat(got, names), expected)


def test_state_dict_round_trip_before_binding():
    model = make_model()
    batch = make_batch()
    wrapper = make_wrapper(model, weighting=dict(type='UncertaintyWeighting'))
    train_step(model, wrapper, batch)
    state = wrapper.state_dict()
    assert set(state['mtl']) >= {'weighting', 'aggregator'}
    fresh = make_wrapper(model, weighting=dict(type='UncertaintyWeighting'))
    fresh.load_state_dict(copy.deepcopy(state))
    assert fresh.weighting is None  # applied once a model is bound
    fresh.bind(model)
    for key, value in wrapper.weighting.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(fresh.weighting.state_dict()[key], value)


def test_nonfinite_loss_raises_with_task_and_iteration():
    model = make_model(tasks=('a', 'b'))
    wrapper = make_wrapper(model)
    batch = make_batch(tasks=('a', 'b'))
    with torch.no_grad():
        model.tasks.b.head.fc.weight.fill_(float('nan'))
    MessageHub.get_current_instance().update_info('iter', 6)
    with pytest.raises(FloatingPointError, match=r"iteration 7.*'b'"):
        train_step(model, wrapper, batch)
    assert not wrapper.recorded


def test_nonfinite_step_skipped_when_asked():
    model = make_model(tasks=('a', 'b'))
    model.nonfinite_losses = 'skip'
    wrapper = make_wrapper(model)
    with torch.no_grad():
        model.tasks.b.head.fc.weight.fill_(float('nan'))
    before = copy.deepcopy(model.state_dict())
    train_step(model, wrapper, make_batch(tasks=('a', 'b')))
    assert wrapper.skipped_steps == 1 and not wrapper.recorded
    for name, value in before.items():
        assert torch.equal(model.state_dict()[name], value, ) or \
            torch.isnan(value).any(), name


def test_aggregator_refuses_a_step_without_every_task():
    model = make_model(tasks=('a', 'b'))
    wrapper = make_wrapper(model, aggregator=dict(type='PCGrad'))
    with pytest.raises(ValueError, match="mode='joint'"):
        train_step(model, wrapper, make_batch(tasks=('a', )))


def test_weighting_works_with_one_task_steps():
    model = make_model(tasks=('a', 'b'))
    wrapper = make_wrapper(model, weighting=dict(type='UncertaintyWeighting'))
    train_step(model, wrapper, make_batch(tasks=('a', )))
    train_step(model, wrapper, make_batch(tasks=('b', )))
    assert len(wrapper.recorded) == 2
    assert not any(n.startswith('tasks.b.') for n in wrapper.recorded[0])


def test_bad_configs():
    model = make_model(tasks=('a', 'b'))
    with pytest.raises(KeyError):
        make_wrapper(model, aggregator=dict(type='NoSuchAggregator'))
    wrapper = make_wrapper(
        model, weighting=dict(type='UncertaintyWeighting', tasks=['a', 'c']))
    with pytest.raises(ValueError, match=r"\['a', 'c'\]"):
        train_step(model, wrapper, make_batch(tasks=('a', 'b')))
    wrapper = make_wrapper(
        make_model(tasks=('a', 'b'), share_stages=0),
        weighting=dict(type='GradNorm'))
    with pytest.raises(ValueError, match='GradNorm'):
        wrapper.bind(make_model(tasks=('a', 'b'), share_stages=0))
    with pytest.raises(ValueError, match='aggregate_per'):
        make_wrapper(model, aggregate_per='layer')
    with pytest.raises(TypeError, match='per-task losses'):
        wrapper = make_wrapper(model)
        wrapper.bind(model)
        wrapper.update_params(torch.tensor(1., requires_grad=True))


def _demo_cfg(name='pvtv2_b0_full_share_pcgrad_demo'):
    from mmengine.config import Config

    from mtl_pvt.testing.tiny_mtl import REPO
    return Config.fromfile(f'{REPO}/configs/demo/mtl/{name}.py')


@pytest.mark.parametrize('change,error', [
    (lambda c: c.train_dataloader.batch_sampler.update(mode='alternating'),
     "mode='joint'"),
    (lambda c: c.optim_wrapper.update(aggregator=dict(type='PCGrd')),
     "optim_wrapper.aggregator.type: 'PCGrd' is not registered"),
    (lambda c: c.optim_wrapper.update(weighting=dict(type='FAMO')),
     'LossWeightingHook'),
    (lambda c: c.update(
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD')),
        model=dict(c.model, nonfinite_losses='skip')),
     'MultiTaskOptimWrapper'),
])
def test_preflight_refuses_balancing_that_cannot_train(change, error):
    from mtl_pvt import register_all_modules
    from mtl_pvt.utils import check_config
    register_all_modules(init_default_scope=False)
    cfg = _demo_cfg()
    change(cfg)
    with pytest.raises(Exception, match=error):
        check_config(cfg, stages=('train', ))


def test_amp_switches_to_the_multi_task_amp_wrapper(monkeypatch):
    from mtl_pvt.engine import cli
    cfg = _demo_cfg()
    with pytest.raises(RuntimeError, match='--amp needs a GPU'):
        cli.enable_amp(cfg)
    monkeypatch.setattr(cli, 'get_device', lambda: 'cuda')
    cli.enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'MultiTaskAmpOptimWrapper'
