"""Loss weightings: their defining formulas, state round trips, bad input."""
import functools
import io
import math

import pytest
import torch
from mmengine.registry import DefaultScope

from mtl_pvt.models.loss_weighting import (FAMO, BaseLossWeighting,
                                           DynamicWeightAverage,
                                           GeometricLossStrategy, GradNorm,
                                           RandomLossWeighting,
                                           UncertaintyWeighting)
from mtl_pvt.registry import MODELS

TASKS = ['a', 'b', 'c']
NAMES = [
    'UncertaintyWeighting', 'DynamicWeightAverage', 'RandomLossWeighting',
    'GeometricLossStrategy', 'FAMO', 'GradNorm'
]
SGD = dict(type='SGD', lr=0.1)


def build(type, tasks=TASKS, **kwargs):
    with DefaultScope.overwrite_default_scope('mtl_pvt'):
        return MODELS.build(dict(type=type, tasks=list(tasks), **kwargs))


def losses(**values):
    return {t: torch.tensor(float(v)) for t, v in values.items()}


def as_floats(weights):
    return {t: float(w) for t, w in weights.items()}


def softmax(values):
    exp = [math.exp(v) for v in values]
    return [e / sum(exp) for e in exp]


def params(module):
    return torch.stack([p.detach() for p in module.parameters()])


# ------------------------------------------------------------ registry
@pytest.mark.parametrize('name', NAMES)
def test_built_through_the_registry(name):
    weighting = build(name)
    assert isinstance(weighting, BaseLossWeighting)
    assert type(weighting).__name__ == name
    assert weighting.tasks == tuple(TASKS)
    # the scoped name works without a default scope
    cls = MODELS.get(f'mtl_pvt.{name}')
    assert cls is type(weighting)


def test_unknown_type_raises_key_error():
    with pytest.raises(KeyError):
        build('NoSuchWeighting')


def test_task_names_are_checked():
    with pytest.raises(ValueError, match='duplicate'):
        UncertaintyWeighting(tasks=['a', 'a'])
    with pytest.raises(ValueError, match='at least one'):
        UncertaintyWeighting(tasks=[])
    with pytest.raises(TypeError):
        UncertaintyWeighting(tasks='ab')


# ---------------------------------------------------- uncertainty (UW)
def test_uncertainty_weights_are_exp_minus_s():
    uw = build('UncertaintyWeighting', init=dict(a=0.5, b=-1.))
    w = as_floats(uw.weights(losses(a=1, b=1, c=1)))
    assert w == pytest.approx(dict(a=math.exp(-0.5), b=math.e, c=1.))


def test_uncertainty_sgd_step_is_the_hand_computed_one():
    uw = build('UncertaintyWeighting', init=[0., 0.3, -0.2], optimizer=SGD)
    s = [0., 0.3, -0.2]
    step = losses(a=2., b=0.5, c=1.)
    uw.update(step)
    expected = [
        s_t - 0.1 * (1 - math.exp(-s_t) * float(step[t]))
        for s_t, t in zip(s, TASKS)
    ]
    assert params(uw).tolist() == pytest.approx(expected, rel=1e-6)
    # s rises for a loss above exp(s), falls for one below
    assert expected[0] > s[0] and expected[1] < s[1]


def test_uncertainty_adam_moves_only_present_tasks():
    uw = build('UncertaintyWeighting')  # Adam, lr 1e-3
    uw.update(losses(a=2., b=0.5))
    s = params(uw).tolist()
    # Adam's first step is lr * sign(-gradient)
    assert s == pytest.approx([1e-3, -1e-3, 0.], abs=1e-7)
    assert uw.log_vars() == pytest.approx({
        f'sigma.{t}': math.exp(v / 2)
        for t, v in zip(TASKS, s)
    })


def test_uncertainty_optimizer_may_be_a_callable():
    uw = build(
        'UncertaintyWeighting',
        optimizer=functools.partial(torch.optim.SGD, lr=0.1))
    uw.update(losses(a=3.))
    assert params(uw).tolist() == pytest.approx([0.2, 0., 0.])


def test_log_var_keys_never_contain_loss():
    uw = build('UncertaintyWeighting', tasks=['aux_loss', 'b'])
    famo = build('FAMO', tasks=['aux_loss', 'b'])
    for weighting in (uw, famo):
        keys = list(weighting.log_vars())
        assert len(keys) == 2
        assert not any('loss' in k for k in keys)


# --------------------------------------------------------------- DWA
def test_dwa_hand_computed_sequence():
    dwa = build('DynamicWeightAverage', tasks=['a', 'b'], window=2)
    steps = [
        # window 0: means a 3, b 1
        losses(a=4., b=1.),
        losses(a=2., b=1.),
        # window 1: means a 1.5, b 0.8 (b absent from its second step)
        losses(a=1.5, b=0.8),
        losses(a=1.5),
        # window 2: means a 1, b 0.4
        losses(a=1., b=0.4),
        losses(b=0.4),
        losses(a=1., b=0.4),
    ]
    ratios = {2: (1.5 / 3., 0.8 / 1.), 3: (1. / 1.5, 0.4 / 0.8)}
    seen = []
    for i, step in enumerate(steps):
        seen.append(as_floats(dwa.weights(step)))
        dwa.update(step)
    # the first two windows: weights 1
    for w in seen[:4]:
        assert all(v == 1. for v in w.values())
    for i, w in enumerate(seen[4:], start=4):
        r = ratios[i // 2]
        expected = dict(
            zip('ab', (2 * v for v in softmax([x / 2 for x in r]))))
        assert w == pytest.approx({t: expected[t] for t in w}, rel=1e-6)
    # window 3 has started: the ratios of windows 2 and 1
    r = ratios[3]
    expected = [2 * v for v in softmax([x / 2 for x in r])]
    w = dwa.weights(losses(a=1., b=1.))
    assert [float(w['a']), float(w['b'])] == pytest.approx(expected, rel=1e-6)
    # a task's weight does not depend on which tasks are present
    assert float(dwa.weights(losses(b=3.))['b']) == float(w['b'])


def test_dwa_waits_for_every_task():
    dwa = build('DynamicWeightAverage', window=2)
    for i in range(10):
        dwa.update(losses(a=1. / (i + 1), b=1.))  # 'c' never trains
    assert as_floats(dwa.weights(losses(a=1., b=1.))) == dict(a=1., b=1.)
    with pytest.raises(ValueError, match='window'):
        build('DynamicWeightAverage', window=0)


# --------------------------------------------------------------- RLW
def rlw_sequence(weighting, n=8):
    out = []
    for i in range(n):
        step = losses(a=1., b=2., c=3.) if i % 3 else losses(a=1., c=2.)
        out.append(weighting.weights(step))
        weighting.update(step)
    return out


def test_rlw_same_seed_same_sequence_and_sums():
    torch.manual_seed(1)
    first = rlw_sequence(build('RandomLossWeighting', seed=3))
    torch.manual_seed(2)  # the global generator plays no part
    second = rlw_sequence(build('RandomLossWeighting', seed=3))
    other = rlw_sequence(build('RandomLossWeighting', seed=4))
    for w1, w2 in zip(first, second):
        assert all(torch.equal(w1[t], w2[t]) for t in w1)
        assert sum(w1.values()).item() == pytest.approx(len(w1))
        assert all(v > 0 for v in w1.values())
    assert any(not torch.equal(w1[t], w3[t]) for w1, w3 in zip(first, other)
               for t in w1)
    # consecutive steps draw different weights
    assert not torch.equal(first[1]['a'], first[2]['a'])


def test_rlw_first_weights_are_the_softmax_of_its_seeded_draw():
    rlw = build('RandomLossWeighting', seed=5)
    z = torch.randn(3, generator=torch.Generator().manual_seed(5))
    w = rlw.weights(losses(a=1., b=1., c=1.))
    assert torch.allclose(torch.stack(list(w.values())), 3 * z.softmax(0))
    # pure: asking again gives the same weights
    again = rlw.weights(losses(a=1., b=1., c=1.))
    assert all(torch.equal(w[t], again[t]) for t in w)


def test_rlw_sum_to_one():
    rlw = build('RandomLossWeighting', normalize='sum_to_one')
    for w in rlw_sequence(rlw):
        assert sum(w.values()).item() == pytest.approx(1.)
    with pytest.raises(ValueError, match='normalize'):
        build('RandomLossWeighting', normalize='sum')


# --------------------------------------------------------------- GLS
def toy_losses(p):
    return dict(
        a=(p**2).sum() + 0.1, b=torch.exp(p[0] - p[1]), c=(p[2] - 2.)**2 + 0.5)


@pytest.mark.parametrize('tasks', [TASKS, ['a', 'c']])
def test_gls_weighted_gradient_is_that_of_the_geometric_mean(tasks):
    gls = build('GeometricLossStrategy')
    p = torch.tensor([0.3, -0.7, 1.2], dtype=torch.float64, requires_grad=True)
    task_losses = {t: v for t, v in toy_losses(p).items() if t in tasks}
    gm = torch.stack(list(task_losses.values())).prod()**(1 / len(tasks))
    grad_gm, = torch.autograd.grad(gm, p, retain_graph=True)
    w = gls.weights({t: v.detach() for t, v in task_losses.items()})
    assert all(v.dtype == torch.float64 for v in w.values())
    weighted = sum(w[t] * task_losses[t] for t in tasks)
    grad_w, = torch.autograd.grad(weighted, p)
    assert torch.allclose(grad_w, grad_gm, rtol=1e-6, atol=0)


def test_gls_edge_cases():
    gls = build('GeometricLossStrategy')
    assert as_floats(gls.weights(losses(b=7.))) == dict(b=1.)
    with pytest.raises(ValueError, match="'b'"):
        gls.weights(losses(a=1., b=-0.5))
    w = gls.weights(losses(a=1., b=0.))  # clamped to eps: finite
    assert all(math.isfinite(v) for v in as_floats(w).values())
    assert list(gls.state_dict()) == []  # stateless


# -------------------------------------------------------------- FAMO
def set_params(module, values):
    with torch.no_grad():
        for p, v in zip(module.parameters(), values):
            p.fill_(v)


def test_famo_weights_are_the_gradient_of_the_official_loss():
    famo = build('FAMO', min_losses=dict(a=0.1))
    logits = [0.4, -0.3, 0.1]
    set_params(famo, logits)
    values = torch.tensor([0.7, 2.0, 0.3], requires_grad=True)
    d = values - torch.tensor([0.1, 0., 0.]) + 1e-8
    z = torch.tensor(logits).softmax(0)
    c = (z / d).sum().detach()
    official = (z * d.log() / c).sum()
    grad, = torch.autograd.grad(official, values)
    w = famo.weights(dict(zip(TASKS, values.detach().unbind())))
    assert torch.allclose(torch.stack(list(w.values())), grad, rtol=1e-6)


def test_famo_equal_logits_weigh_by_inverse_losses():
    famo = build('FAMO')
    w = as_floats(famo.weights(losses(a=1., b=2., c=4.)))
    inv = [1 / (v + 1e-8) for v in (1., 2., 4.)]
    assert list(w.values()) == pytest.approx([v / sum(inv) for v in inv])
    # one task present: weight 1
    assert float(famo.weights(losses(b=5.))['b']) == pytest.approx(1.)


def famo_hand_step(logits, before, after, lr):
    """xi - lr * J^T delta, in float64."""
    delta = [
        math.log(b + 1e-8) - math.log(a + 1e-8) for b, a in zip(before, after)
    ]
    z = softmax(logits)
    mean = sum(zt * dt for zt, dt in zip(z, delta))
    return [x - lr * zt * (dt - mean) for x, zt, dt in zip(logits, z, delta)]


def test_famo_official_update_by_hand():
    famo = build('FAMO', tasks=['a', 'b'], optimizer=SGD)
    assert famo.requires_losses_after_step
    famo.update(losses(a=2., b=2.))
    assert params(famo).tolist() == [0., 0.]  # update() only remembers
    famo.update_after_step(losses(a=1., b=1.8))
    expected = famo_hand_step([0., 0.], [2., 2.], [1., 1.8], 0.1)
    assert params(famo).tolist() == pytest.approx(expected, rel=1e-6)
    # b's loss fell less: its logit (and its share z) rose
    xi = params(famo).tolist()
    assert xi[1] > 0 > xi[0]
    # a second step starts from the new logits
    famo.update(losses(a=1., b=1.8))
    famo.update_after_step(losses(a=0.9, b=1.0))
    expected = famo_hand_step(expected, [1., 1.8], [0.9, 1.], 0.1)
    assert params(famo).tolist() == pytest.approx(expected, rel=1e-5)


def test_famo_official_default_optimizer_is_adam():
    famo = build('FAMO')
    opt = famo.optimizer
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults['lr'] == 0.025
    assert opt.defaults['weight_decay'] == 0.01


def test_famo_next_step_uses_the_previous_losses():
    nxt = build('FAMO', tasks=['a', 'b'], variant='next_step', optimizer=SGD)
    off = build('FAMO', tasks=['a', 'b'], optimizer=SGD)
    assert not nxt.requires_losses_after_step
    with pytest.raises(RuntimeError):
        nxt.update_after_step(losses(a=1., b=1.))
    first, second = losses(a=2., b=2.), losses(a=1., b=1.8)
    nxt.update(first)
    assert params(nxt).tolist() == [0., 0.]  # nothing to compare with
    nxt.update(second)
    off.update(first)
    off.update_after_step(second)
    assert torch.equal(params(nxt), params(off))


def test_famo_next_step_compares_each_task_with_its_own_last_loss():
    famo = build('FAMO', variant='next_step', optimizer=SGD)
    famo.update(losses(a=2., b=3., c=1.))
    famo.update(losses(a=1.5))  # one task: the sub-softmax does not move
    assert params(famo).tolist() == [0., 0., 0.]
    famo.update(losses(a=1., b=1.2))  # a vs 1.5, b vs 3; c left out
    sub = famo_hand_step([0., 0.], [1.5, 3.], [1., 1.2], 0.1)
    assert params(famo).tolist() == pytest.approx(sub + [0.], rel=1e-6)
    assert sub[0] > 0 > sub[1]


def test_famo_loss_below_min_loss_raises():
    famo = build('FAMO', min_losses=[0., 0.5, 0.])
    with pytest.raises(ValueError, match="'b'"):
        famo.weights(losses(a=1., b=0.4))
    with pytest.raises(ValueError, match='variant'):
        build('FAMO', variant='nope')


# ---------------------------------------------------------- GradNorm
def test_gradnorm_hand_computed_sgd_step():
    gn = build('GradNorm', alpha=1., optimizer=SGD)
    assert gn.requires_grad_norms
    # first update: L0 = these losses, r = 1; mean G = 2 = the targets
    gn.update(losses(a=1., b=2., c=4.), grad_norms=losses(a=3., b=2., c=1.))
    assert gn.initial_losses.tolist() == [1., 2., 4.]
    # grad = sign(G - 2) * G / w: 3, 0, -1
    raw = [1 - 0.1 * 3, 1., 1 + 0.1]
    expected = [3 * v / sum(raw) for v in raw]
    assert params(gn).tolist() == pytest.approx(expected, rel=1e-6)
    assert params(gn).sum().item() == pytest.approx(3.)
    w = gn.weights(losses(a=1., b=1., c=1.))
    assert list(as_floats(w).values()) == pytest.approx(expected, rel=1e-6)


def test_gradnorm_over_target_weight_falls_and_l0_is_kept():
    gn = build('GradNorm')  # Adam, alpha 1.5
    first = losses(a=1., b=1., c=1.)
    gn.update(first, grad_norms=losses(a=5., b=1., c=1.))
    w = params(gn).tolist()
    assert w[0] < 1. < w[1] and w[1] == pytest.approx(w[2])
    assert sum(w) == pytest.approx(3.)
    # a slower task (higher relative loss) gets a larger target
    gn.update(
        losses(a=0.5, b=0.9, c=0.5),
        grad_norms={
            t: torch.tensor(v)
            for t, v in zip(TASKS, w)
        })  # unweighted norms 1
    assert gn.initial_losses.tolist() == [1., 1., 1.]
    w2 = params(gn).tolist()
    assert w2[1] > w[1] and sum(w2) == pytest.approx(3.)


def test_gradnorm_absent_task_and_input_checks():
    gn = build('GradNorm', optimizer=SGD)
    gn.update(losses(a=1., b=1.), grad_norms=losses(a=2., b=1.))
    w = params(gn).tolist()
    assert w[2] == 1. and sum(w) == pytest.approx(3.)
    assert gn.has_initial.tolist() == [True, True, False]
    gn.update(losses(c=2.), grad_norms=losses(c=1.))  # one task: no step
    assert params(gn).tolist() == w
    assert gn.initial_losses.tolist() == [1., 1., 2.]
    with pytest.raises(ValueError, match='grad_norms'):
        gn.update(losses(a=1., b=1.))
    with pytest.raises(ValueError, match='grad_norms'):
        gn.update(losses(a=1., b=1.), grad_norms=losses(a=1.))


# ------------------------------------------------- every weighting
CONFIGS = [
    dict(type='UncertaintyWeighting'),
    dict(type='UncertaintyWeighting', optimizer=SGD),
    dict(type='DynamicWeightAverage', window=2),
    dict(type='RandomLossWeighting', seed=7),
    dict(type='GeometricLossStrategy'),
    dict(type='FAMO'),
    dict(type='FAMO', variant='next_step'),
    dict(type='GradNorm'),
]


def make_steps(n, seed=0):
    """Loss dicts (and grad norms) with random values and task subsets."""
    gen = torch.Generator().manual_seed(seed)
    steps = []
    for i in range(n):
        present = [t for t in TASKS if torch.rand(1, generator=gen) < 0.7]
        present = present or ['a']
        if i < 2:
            present = TASKS
        values = 0.2 + torch.rand(len(present), generator=gen) * 3
        norms = 0.1 + torch.rand(len(present), generator=gen)
        steps.append(
            (dict(zip(present,
                      values.unbind())), dict(zip(present, norms.unbind()))))
    return steps


def run_step(weighting, step_losses, norms):
    w = weighting.weights(step_losses)
    weighting.update(step_losses,
                     norms if weighting.requires_grad_norms else None)
    if weighting.requires_losses_after_step:
        weighting.update_after_step({
            t: v * 0.9
            for t, v in step_losses.items()
        })
    return w


def cfg_id(cfg):
    return '-'.join(str(v) for v in cfg.values() if not isinstance(v, dict))


@pytest.mark.parametrize('cfg', CONFIGS, ids=cfg_id)
def test_state_dict_round_trip_continues_identically(cfg):
    steps = make_steps(10)
    ref = build(**cfg)
    for step in steps[:5]:
        run_step(ref, *step)
    buf = io.BytesIO()
    torch.save(ref.state_dict(), buf)  # as a checkpoint would
    # a restored instance, built fresh (another seed would not matter)
    restored = build(**cfg)
    for step in make_steps(3, seed=1):  # its own, different history
        run_step(restored, *step)
    buf.seek(0)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    for step in steps[5:]:
        w_ref = run_step(ref, *step)
        w_restored = run_step(restored, *step)
        assert list(w_ref) == list(w_restored)
        assert all(torch.equal(w_ref[t], w_restored[t]) for t in w_ref)
    assert all(
        torch.equal(a, b)
        for a, b in zip(ref.parameters(), restored.parameters()))


@pytest.mark.parametrize('cfg', CONFIGS, ids=cfg_id)
def test_weights_are_pure_detached_scalars(cfg):
    weighting = build(**cfg)
    for step in make_steps(4):
        run_step(weighting, *step)
    before = {
        k: v.clone()
        for k, v in weighting.state_dict().items()
        if isinstance(v, torch.Tensor)
    }
    step_losses = losses(c=1.5, a=0.5)
    w1 = weighting.weights(step_losses)
    w2 = weighting.weights(step_losses)
    assert list(w1) == ['a', 'c']  # task order
    for t in w1:
        assert torch.equal(w1[t], w2[t])
        assert w1[t].shape == () and not w1[t].requires_grad
        assert w1[t].dtype == torch.float32 and w1[t] > 0
    after = weighting.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert all(p.grad is None for p in weighting.parameters())


@pytest.mark.parametrize('name', NAMES)
def test_bad_input_names_the_task(name):
    weighting = build(name)
    with pytest.raises(ValueError, match='zzz'):
        weighting.weights(losses(a=1., zzz=1.))
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="'b'.*not finite"):
            weighting.weights(losses(a=1., b=bad))
        with pytest.raises(ValueError, match="'b'.*not finite"):
            weighting.update(
                losses(a=1., b=bad), grad_norms=losses(a=1., b=1.))
    with pytest.raises(ValueError, match='scalar'):
        weighting.weights(dict(a=torch.ones(2)))
    with pytest.raises(ValueError, match='no task'):
        weighting.weights({})


def test_classes_are_exported():
    for cls in (UncertaintyWeighting, DynamicWeightAverage,
                RandomLossWeighting, GeometricLossStrategy, FAMO, GradNorm):
        assert MODELS.get(f'mtl_pvt.{cls.__name__}') is cls
