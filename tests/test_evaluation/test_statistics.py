"""Seed statistics and the multi-metric delta-m, against numbers worked
out by hand (and t tables), not by the library that computes them.

Student t with 2 degrees of freedom has closed forms, which check the
paired test: ``P(|T| > t) = 1 - t / sqrt(2 + t^2)`` and the two-sided
critical value ``q * sqrt(2 / (1 - q^2))`` at confidence ``q``; the other
critical values are those of t tables.
"""
import math

import pytest

from mtl_pvt.evaluation.delta_m import multi_metric_delta_m, parse_metric_spec
from mtl_pvt.evaluation.statistics import paired_t_test, summarize, t_quantile

T_4_975 = 2.7764451052  # t table: 4 degrees of freedom, 0.975


def t2_quantile(confidence):
    """Two-sided critical value of t with 2 degrees of freedom."""
    return confidence * math.sqrt(2 / (1 - confidence**2))


def t2_p(t):
    """Two-sided p of t with 2 degrees of freedom."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def test_t_quantile_against_tables():
    assert t_quantile(0.95, 4) == pytest.approx(T_4_975, abs=1e-9)
    assert t_quantile(0.95, 2) == pytest.approx(4.3026527297, abs=1e-9)
    assert t_quantile(0.95, 2) == pytest.approx(t2_quantile(0.95))
    assert t_quantile(0.90, 2) == pytest.approx(2.9199855804, abs=1e-9)
    assert t_quantile(0.99, 9) == pytest.approx(3.2498355416, abs=1e-9)


def test_summarize_one_to_five():
    s = summarize([1, 2, 3, 4, 5])
    sd = math.sqrt(2.5)  # squares 4 + 1 + 0 + 1 + 4 = 10, / 4
    assert s['n'] == 5 and s['mean'] == 3.
    assert s['sd'] == pytest.approx(1.5811388301)
    assert s['sem'] == pytest.approx(sd / math.sqrt(5))
    assert s['half_width'] == pytest.approx(1.9632432, abs=1e-7)
    assert s['ci'] == pytest.approx((1.0367568, 4.9632432), abs=1e-7)
    assert s['confidence'] == 0.95


def test_summarize_other_confidence():
    # 90 %: t(2, 0.95) = 2.9199856; sd of 2, 4, 9 = sqrt(13), sem sqrt(13/3)
    s = summarize([2, 4, 9], confidence=0.9)
    assert s['mean'] == 5.
    assert s['sd'] == pytest.approx(math.sqrt(13))
    assert s['half_width'] == pytest.approx(
        t2_quantile(0.9) * math.sqrt(13 / 3))
    assert s['half_width'] == pytest.approx(6.0784347, abs=1e-6)


def test_one_seed_gives_no_interval():
    s = summarize([81.5])
    assert s == dict(
        n=1,
        mean=81.5,
        sd=None,
        sem=None,
        ci=None,
        half_width=None,
        confidence=0.95)


def test_identical_values():
    s = summarize([0.25, 0.25, 0.25])
    assert s['sd'] == 0. and s['ci'] == (0.25, 0.25)


@pytest.mark.parametrize(
    'values, message',
    [([], 'no values'), ([1., math.nan], r'finite numbers, but got \[nan\]'),
     ([1., math.inf, 2.], r'finite numbers, but got \[inf\]'),
     ([1, None], 'finite numbers'), ('123', 'a sequence of numbers'),
     ([True, 1.], 'finite numbers')])
def test_summarize_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        summarize(values)


def test_summarize_bad_confidence():
    with pytest.raises(ValueError, match=r'confidence must be in \(0, 1\)'):
        summarize([1., 2.], confidence=95)


def test_paired_t_test_by_hand():
    # d = 1, 1, 3: mean 5/3, squares (4 + 4 + 16) / 9 / 2 = 4/3
    test = paired_t_test([10, 12, 14], [9, 11, 11])
    assert test['differences'] == [1., 1., 3.]
    assert test['n'] == 3 and test['df'] == 2
    assert test['mean_diff'] == pytest.approx(5 / 3)
    assert test['sd'] == pytest.approx(1.1547005, abs=1e-7)
    assert test['sem'] == pytest.approx(2 / 3)
    assert test['t'] == pytest.approx(2.5)
    # 1 - 2.5 / sqrt(8.25)
    assert test['p'] == pytest.approx(0.1296117, abs=1e-7)
    assert test['p'] == pytest.approx(t2_p(2.5))
    half = 4.3026527297 * 2 / 3
    assert test['half_width'] == pytest.approx(half)
    assert test['ci'] == pytest.approx((-1.2017685, 4.5351018), abs=1e-6)
    assert test['identical'] is False


def test_paired_t_test_is_paired_and_signed():
    # the same values unpaired would hardly differ; by seed b is 1 less
    test = paired_t_test([1, 5, 9, 13], [0, 4, 9, 11])
    # d = 1, 1, 0, 2: mean 1, sd sqrt(2/3), t = 1 / (sqrt(2/3) / 2)
    assert test['mean_diff'] == 1.
    assert test['t'] == pytest.approx(2 / math.sqrt(2 / 3))
    assert test['t'] == pytest.approx(2.4494897, abs=1e-7)
    # 3 degrees of freedom: P(|T| > t) = 1 - 2/pi (atan(t / sqrt(3)) +
    # sqrt(3) t / (3 + t^2))
    t = test['t']
    p = 1 - 2 / math.pi * (
        math.atan(t / math.sqrt(3)) + math.sqrt(3) * t / (3 + t * t))
    assert test['p'] == pytest.approx(p)
    assert test['p'] == pytest.approx(0.0917211, abs=1e-7)
    swapped = paired_t_test([0, 4, 9, 11], [1, 5, 9, 13])
    assert swapped['t'] == pytest.approx(-test['t'])
    assert swapped['p'] == pytest.approx(test['p'])


def test_identical_differences():
    # 10.1 - 10 and 12.1 - 12 round differently; still identical
    shifted = paired_t_test([10.1, 12.1, 80.1], [10, 12, 80])
    assert shifted['identical'] is True
    assert shifted['t'] == math.inf and shifted['p'] == 0.
    assert shifted['sd'] == 0. and shifted['half_width'] == 0.
    assert shifted['ci'][0] == shifted['ci'][1] == shifted['mean_diff']
    lower = paired_t_test([1., 2.], [3., 4.])
    assert lower['t'] == -math.inf and lower['p'] == 0.
    same = paired_t_test([0.3, 0.5], [0.3, 0.5])
    assert same['identical'] is True
    assert same['t'] == 0. and same['p'] == 1.
    assert same['ci'] == (0., 0.)


def test_paired_t_test_errors():
    with pytest.raises(ValueError, match='3 values in a and 2 in b'):
        paired_t_test([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match='at least 2 pairs .* got 1'):
        paired_t_test([1], [2])
    with pytest.raises(ValueError, match='b must be finite'):
        paired_t_test([1, 2], [1, math.nan])


# ------------------------------------------------ multi-metric delta-m --
SPEC = dict(
    cls='accuracy/top1',
    det=['coco/bbox_mAP',
         dict(metric='miss_rate', higher_is_better=False)],
    seg=dict(metric='mIoU'))
STL = {
    'cls/accuracy/top1': 80.,
    'det/coco/bbox_mAP': 0.40,
    'det/miss_rate': 0.50,
    'seg/mIoU': 40.
}


def test_parse_metric_spec():
    assert parse_metric_spec(SPEC) == dict(
        cls=[dict(metric='accuracy/top1', higher_is_better=True)],
        det=[
            dict(metric='coco/bbox_mAP', higher_is_better=True),
            dict(metric='miss_rate', higher_is_better=False)
        ],
        seg=[dict(metric='mIoU', higher_is_better=True)])


@pytest.mark.parametrize('spec, message', [
    ({}, 'non-empty dict'),
    (dict(cls=[]), r'metrics.cls: no metric'),
    (dict(cls=dict(metric='a', better=True)), 'each metric is a name'),
    (dict(cls=dict(metric='')), 'must be a name'),
    (dict(cls=dict(metric='a', higher_is_better='no')), 'True or False'),
    (dict(cls=['a', 'a']), "'a' is given twice"),
])
def test_bad_metric_spec(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_metric_spec(spec)


def test_multi_metric_delta_m_by_hand():
    mtl = {
        'cls/accuracy/top1': 84.,  # +5 %
        'det/coco/bbox_mAP': 0.44,  # +10 %
        'det/miss_rate': 0.55,  # 10 % more misses: -10 %
        'seg/mIoU': 38.,  # -5 %
        'seg/aAcc': 1.  # not in the spec, not used
    }
    delta, changes = multi_metric_delta_m(mtl, STL, SPEC)
    # det: (+10 - 10) / 2 = 0; each task weighs 1/3 however many metrics
    assert changes == pytest.approx(dict(cls=5., det=0., seg=-5.))
    assert delta == pytest.approx(0.)
    mtl['det/miss_rate'] = 0.45  # 10 % fewer misses: +10 %
    delta, changes = multi_metric_delta_m(mtl, STL, SPEC)
    assert changes['det'] == pytest.approx(10.)
    assert delta == pytest.approx(10 / 3)


def test_multi_metric_delta_m_is_maninis_with_one_metric():
    from mtl_pvt.evaluation import delta_m
    mtl = {'cls/accuracy/top1': 78., 'seg/mIoU': 46.}
    spec = dict(cls='accuracy/top1', seg='mIoU')
    references = dict(
        cls=dict(metric='accuracy/top1', stl=80.),
        seg=dict(metric='mIoU', stl=40.))
    assert multi_metric_delta_m(mtl, STL, spec)[0] == pytest.approx(
        delta_m(mtl, references))
    assert delta_m(mtl, references) == pytest.approx(6.25)


def test_multi_metric_delta_m_negative_reference():
    # |M_stl|: a negative single-task value keeps "positive = better"
    spec = dict(reg=dict(metric='score'))
    delta, _ = multi_metric_delta_m({'reg/score': -1.}, {'reg/score': -2.},
                                    spec)
    assert delta == pytest.approx(50.)


def test_multi_metric_delta_m_errors():
    mtl = dict(STL)
    del mtl['det/miss_rate']
    with pytest.raises(KeyError) as error:
        multi_metric_delta_m(mtl, STL, SPEC)
    message = error.value.args[0]
    assert "task 'det': metric 'miss_rate' ('det/miss_rate')" in message
    assert 'multi-task metrics' in message
    assert "['coco/bbox_mAP']" in message
    with pytest.raises(KeyError, match="'seg/mIoU'.*single-task"):
        multi_metric_delta_m(STL, {'cls/accuracy/top1': 1.}, dict(seg='mIoU'))
    with pytest.raises(ValueError, match="task 'seg'.*'mIoU' is 0"):
        multi_metric_delta_m(STL, dict(STL, **{'seg/mIoU': 0.}), SPEC)
    with pytest.raises(ValueError, match='must be a finite number'):
        multi_metric_delta_m(dict(STL, **{'seg/mIoU': math.nan}), STL, SPEC)
