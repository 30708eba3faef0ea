"""Schedules of a config fitted to a run shorter than their boundaries."""
import logging

import pytest
from mmengine.config import Config

from mtl_pvt.utils.schedules import fit_schedules

# The demo configs' warm-up, then PolyLR to the end.
DEMO = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=20),
    dict(type='PolyLR', eta_min=0., power=0.9, by_epoch=False, begin=20)
]


def config(max_iters, schedulers=DEMO):
    return Config(
        dict(
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
            param_scheduler=schedulers))


def spans(cfg):
    return [(s.type, s.get('begin', 0), s.get('end'))
            for s in cfg.param_scheduler]


def test_long_enough_runs_are_untouched():
    cfg = config(21)
    assert fit_schedules(cfg) == []
    assert spans(cfg) == [('LinearLR', 0, 20), ('PolyLR', 20, None)]


@pytest.mark.parametrize('max_iters,expected', [
    (20, [('LinearLR', 0, 10), ('PolyLR', 10, None)]),
    (10, [('LinearLR', 0, 5), ('PolyLR', 5, None)]),
    (3, [('LinearLR', 0, 2), ('PolyLR', 2, None)]),
])
def test_warm_up_scaled_to_half_the_run(max_iters, expected):
    cfg = config(max_iters)
    (level, message), = fit_schedules(cfg)
    assert spans(cfg) == expected
    assert level == logging.WARNING
    assert message.startswith(
        f'max_iters={max_iters} is shorter than the param_scheduler: '
        'LinearLR [0, 20) -> ')


def test_one_iteration_keeps_the_warm_up_only():
    cfg = config(1)
    (_, message), = fit_schedules(cfg)
    assert spans(cfg) == [('LinearLR', 0, 1)]
    assert message.endswith('PolyLR [20, end) -> dropped')


def test_explicit_ends_beyond_the_run_are_clipped():
    # a real-scale schedule run for 10 iterations
    cfg = config(10, [
        dict(type='LinearLR', by_epoch=False, end=1500),
        dict(type='PolyLR', by_epoch=False, begin=1500, end=90000)
    ])
    fit_schedules(cfg)
    assert spans(cfg) == [('LinearLR', 0, 5), ('PolyLR', 5, 10)]
    cfg = config(3000, [dict(type='PolyLR', by_epoch=False, end=90000)])
    fit_schedules(cfg)
    assert spans(cfg) == [('PolyLR', 0, 3000)]


def test_epoch_schedules_of_an_epoch_loop():
    # the STL cls demo: an iteration warm-up (left alone: the iterations
    # per epoch are not known yet) and a cosine from epoch 1
    cfg = Config(
        dict(
            train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1),
            param_scheduler=[
                dict(type='LinearLR', by_epoch=False, end=20),
                dict(type='CosineAnnealingLR', by_epoch=True, begin=1)
            ]))
    (_, message), = fit_schedules(cfg)
    assert spans(cfg) == [('LinearLR', 0, 20)]
    assert message == ('max_epochs=1 is shorter than the param_scheduler: '
                       'CosineAnnealingLR [1, end) -> dropped')


def test_single_scheduler_dict_and_no_schedule():
    cfg = config(5, dict(type='PolyLR', by_epoch=False, begin=10))
    fit_schedules(cfg)
    assert cfg.param_scheduler == dict(type='PolyLR', by_epoch=False, begin=2)
    assert fit_schedules(config(5, [])) == []
