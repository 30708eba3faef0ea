"""MultiTaskAmpOptimWrapper on the CPU: a CPU GradScaler and CPU autocast.

The wrapper's arithmetic (per-task rows unscaled before the weighting and
the aggregator see them, the combined gradient scaled back for the
GradScaler) is checked by its defining properties:

- The loss scale is a power of two, so without autocast scaling changes
  no rounding: every method's update is bit-identical to the fp32
  wrapper's. So is it under bfloat16 autocast (fp32's exponent range: the
  scaled gradients neither overflow nor underflow), against the fp32
  wrapper under the same autocast.
- Under float16 autocast the update is the fp32 update within fp16's
  rounding (a wrong unscaling is off by a power of two, 2^10 here).
- An overflow is skipped exactly as mmengine's ``AmpOptimWrapper`` skips
  it: weights, optimizer state and the weighting untouched, the scale
  halved; the scale is kept in the checkpoint.
"""
import copy
from contextlib import contextmanager

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mtl_pvt.testing import make_mtl_batch, make_mtl_model
from mtl_pvt.testing.cpu_amp import cpu_amp
from mtl_pvt.testing.tiny_mtl import mtl_optim_wrapper_cfg

SCALE = 2.**10
_MODEL = {}

AGGREGATORS = [
    dict(type='Sum'),
    dict(type='Mean'),
    dict(type='PCGrad', seed=3),
    dict(type='CAGrad'),
    dict(type='MGDA'),
    dict(type='IMTLG'),
    dict(type='NashMTL'),
    dict(type='AlignedMTL'),
    dict(type='UPGrad'),
]
WEIGHTINGS = [
    dict(type='UncertaintyWeighting', init=0.3),
    dict(type='DynamicWeightAverage'),
    dict(type='GeometricLossStrategy'),
    dict(type='GradNorm'),
    dict(type='RandomLossWeighting'),
    dict(type='FAMO', variant='next_step'),
]
METHODS = [dict(aggregator=a) for a in AGGREGATORS] + \
    [dict(weighting=w) for w in WEIGHTINGS] + [
        dict(aggregator=dict(type='PCGrad', seed=3),
             task_clip_grad=dict(max_norm=0.05)),
        dict(weighting=dict(type='UncertaintyWeighting'),
             clip_grad=dict(max_norm=0.05)),
        dict(aggregator=dict(type='UPGrad'), task_by_task=True),
    ]


def method_id(method):
    return '+'.join(v['type'] if isinstance(v, dict) and 'type' in v else k
                    for k, v in method.items())


def make_model(tasks=('a', 'b', 'seg')):
    if tasks not in _MODEL:
        _MODEL[tasks] = make_mtl_model(tasks)
    return copy.deepcopy(_MODEL[tasks])


def make_wrapper(model, amp, **method):
    if amp:
        method = dict(loss_scale=dict(init_scale=SCALE), **method)
    # the method may name another optimizer
    cfg = mtl_optim_wrapper_cfg(amp, **copy.deepcopy(method))
    return build_optim_wrapper(model, cfg)


def run(method, amp, autocast=None, steps=None, model=None):
    """``steps`` training steps (of a fresh model unless one is given);
    (model, wrapper). ``autocast`` without ``amp``: the fp32 wrapper under
    the same autocast, with no loss scaling. By default a weighting gets
    two steps (its second uses what its first learnt), an aggregator
    one."""
    model = make_model() if model is None else model
    batch = make_mtl_batch(tuple(model.tasks))
    if steps is None:
        steps = 2 if 'weighting' in method else 1
    with cpu_amp(dtype=autocast, autocast=autocast is not None):
        wrapper = make_wrapper(model, amp, **method)
        if autocast is not None and not amp:
            wrapper.optim_context = _autocast_too(wrapper.optim_context,
                                                  autocast)
        model.train()
        for step in range(steps):
            torch.manual_seed(step)  # the seg head's dropout
            model.train_step(copy.deepcopy(batch), wrapper)
    return model, wrapper


def _autocast_too(optim_context, dtype):

    @contextmanager
    def context(model):
        with optim_context(model), torch.autocast('cpu', dtype=dtype):
            yield

    return context


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_identical(got, expected, where='state'):
    """Equal to the bit, through nested dicts and lists (a weighting's
    state holds its own optimizer's)."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(got, expected), where
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys(), where
        for key, value in expected.items():
            assert_identical(got[key], value, f'{where}.{key}')
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_identical(g, e, f'{where}[{i}]')
    else:
        assert got == expected, where


@pytest.mark.parametrize('method', METHODS, ids=method_id)
def test_loss_scaling_changes_no_bit_of_the_update(method):
    fp32, fp32_wrapper = run(method, amp=False)
    amp, amp_wrapper = run(method, amp=True)
    assert amp_wrapper.loss_scaler.get_scale() == SCALE  # no overflow
    assert_identical(weights(amp), weights(fp32))
    if fp32_wrapper.weighting is not None:
        assert_identical(amp_wrapper.weighting.state_dict(),
                         fp32_wrapper.weighting.state_dict())


@pytest.mark.parametrize(
    'method', [METHODS[i] for i in (6, 12, 17)], ids=method_id)
def test_bfloat16_autocast_scaled_equals_unscaled(method):
    """Under the same bf16 autocast, the loss scaler changes no bit."""
    plain, _ = run(method, amp=False, autocast=torch.bfloat16)
    amp, wrapper = run(method, amp=True, autocast=torch.bfloat16)
    fp32, _ = run(method, amp=False)
    assert wrapper.loss_scaler.get_scale() == SCALE
    assert_identical(weights(amp), weights(plain))
    # and autocast did run: bf16 rounding moved the update
    assert any(not torch.equal(v,
                               fp32.state_dict()[k])
               for k, v in plain.state_dict().items())


def _update_error(got, start, expected):
    """|got - expected| / |expected - start| over all floating-point
    tensors together (norms of the whole updates: an element or a tensor
    whose task gradients nearly cancel keeps the rounding of the terms,
    not of their sum)."""
    names = [n for n, v in expected.items() if v.is_floating_point()]
    error = torch.cat([(got[n] - expected[n]).reshape(-1) for n in names])
    update = torch.cat([(expected[n] - start[n]).reshape(-1) for n in names])
    return float(error.norm() / update.norm())


# every family once (the exact test above covers every method): the plain
# sum, a projection, a solver, two weightings (one needs gradient norms),
# per-task clipping, task by task
@pytest.mark.parametrize(
    'method', [METHODS[i] for i in (0, 2, 6, 9, 12, 15, 17)], ids=method_id)
def test_float16_autocast_gives_the_fp32_update(method):
    """fp16's unit roundoff u is 2^-11; the forward and backward of the
    tiny model (four stages of two layers, the heads) sum a few tens of
    such roundings: 64 u = 3.1 % of each tensor's update (norm against
    norm) is that budget. A wrong unscaling is off by 2^10, a lost
    aggregation by the tasks' disagreement (tens of %).

    The two classification tasks: the demo segmenter's first patch
    embedding has a bias gradient of 2.4e6 at initialisation (fp32), above
    fp16's largest value at any scale that does not underflow the rest,
    so with it every fp16 step overflows (the scaler's business, checked
    below) and there is no fp16 update to compare.
    """
    tasks = ('a', 'b')
    # SGD: an update in proportion to the gradient (Adam's first step is
    # +-lr wherever |g| >> eps, so it turns the rounding noise of a
    # gradient that is 0 in exact arithmetic, as the attention's key bias
    # has, into full-size updates of either sign)
    method = dict(method, optimizer=dict(type='SGD', lr=0.1))
    start = weights(make_model(tasks))
    fp32, _ = run(method, amp=False, model=make_model(tasks))
    amp, wrapper = run(
        method, amp=True, autocast=torch.float16, model=make_model(tasks))
    assert wrapper.loss_scaler.get_scale() == SCALE
    error = _update_error(weights(amp), start, weights(fp32))
    assert 0 < error < 64 * 2.**-11  # > 0: fp16 did run


def _overflow_task(model, task='b'):
    """Make ``task``'s gradient (only its) overflow: its head's input gets
    an infinite gradient."""

    def hook(module, args):
        x = args[0]
        if isinstance(x, (list, tuple)):
            x = x[-1]
        if x.requires_grad:
            x.register_hook(lambda g: g * float('inf'))

    return model.tasks[task].head.register_forward_pre_hook(hook)


@pytest.mark.parametrize(
    'method', [
        dict(),
        dict(aggregator=dict(type='NashMTL')),
        dict(
            aggregator=dict(type='PCGrad', seed=3),
            task_clip_grad=dict(max_norm=0.05)),
        dict(weighting=dict(type='GradNorm')),
        dict(
            weighting=dict(type='UncertaintyWeighting'),
            clip_grad=dict(max_norm=0.05)),
    ],
    ids=lambda m: method_id(m) or 'plain')
def test_an_overflow_is_skipped_as_amp_optim_wrapper_skips_it(method):
    # mmengine's own AmpOptimWrapper on the same overflow
    model = make_model()
    before = weights(model)
    _overflow_task(model)
    with cpu_amp(autocast=False):
        reference = build_optim_wrapper(
            model,
            dict(
                type='AmpOptimWrapper',
                optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                loss_scale=dict(init_scale=SCALE)))
        model.train()
        model.train_step(make_mtl_batch(), reference)
    skipped = weights(model)  # the BN statistics of the forward changed
    assert all(
        torch.equal(skipped[n], before[n])
        for n, _ in model.named_parameters())
    assert reference.loss_scaler.get_scale() == SCALE / 2

    model = make_model()
    handle = _overflow_task(model)
    _, wrapper = run(method, amp=True, steps=1, model=model)
    handle.remove()
    assert_identical(weights(model), skipped)
    assert wrapper.optimizer.state_dict()['state'] == {}
    assert wrapper.loss_scaler.state_dict() == \
        reference.loss_scaler.state_dict()
    assert wrapper.skipped_steps == 0  # the scaler's skip, not a bad loss
    if wrapper.weighting is not None:
        with cpu_amp(autocast=False):
            fresh = make_wrapper(model, True, **method)
        fresh.bind(model)
        assert_identical(wrapper.weighting.state_dict(),
                         fresh.weighting.state_dict())
    # and the next step trains, at the halved scale
    with cpu_amp(autocast=False):
        model.train_step(make_mtl_batch(), wrapper)
    assert wrapper.loss_scaler.get_scale() == SCALE / 2
    after = weights(model)
    changed = [k for k, v in after.items() if not torch.equal(v, skipped[k])]
    assert any(k.startswith('backbone.') for k in changed)
    assert all(
        torch.isfinite(v).all() for v in after.values()
        if v.is_floating_point())


def test_the_scale_is_kept_in_the_checkpoint():
    method = dict(weighting=dict(type='UncertaintyWeighting'))
    model = make_model()
    batch = make_mtl_batch()
    with cpu_amp(autocast=False):
        wrapper = make_wrapper(model, True, **method)
        model.train()
        handle = _overflow_task(model)
        model.train_step(copy.deepcopy(batch), wrapper)  # skipped
        handle.remove()
        model.train_step(copy.deepcopy(batch), wrapper)  # taken
        state = copy.deepcopy(wrapper.state_dict())
        fresh = make_wrapper(make_model(), True, **method)
        fresh.load_state_dict(copy.deepcopy(state))
    assert state['loss_scaler']['scale'] == SCALE / 2
    assert state['loss_scaler']['_growth_tracker'] == 1
    assert state['mtl']['updates'] == 2
    assert fresh.loss_scaler.state_dict() == wrapper.loss_scaler.state_dict()
