"""delta_m: the mean relative change against the single-task references."""
import re

import pytest

from mtl_pvt.evaluation import delta_m, parse_delta_m, relative_changes

REFERENCES = dict(
    cls=dict(metric='accuracy/top1', stl=80.),
    det=dict(metric='coco/bbox_mAP', stl=0.4),
    depth=dict(metric='rmse', stl=0.5, higher_is_better=False))


def test_known_numbers_with_a_lower_is_better_metric():
    metrics = {
        'cls/accuracy/top1': 78.,  # 2 points lower: -2.5 %
        'cls/accuracy/top5': 95.,  # not the main metric
        'det/coco/bbox_mAP': 0.46,  # +15 %
        'depth/rmse': 0.45,  # 10 % lower error: +10 %
    }
    changes = relative_changes(metrics, REFERENCES)
    assert changes == pytest.approx(dict(cls=-2.5, det=15., depth=10.))
    assert delta_m(metrics, REFERENCES) == pytest.approx(7.5)
    # a worse error counts against the model
    metrics['depth/rmse'] = 0.6
    assert delta_m(metrics, REFERENCES) == pytest.approx((-2.5 + 15 - 20) / 3)


def test_equal_to_references_is_zero():
    metrics = {
        '/'.join((task, ref['metric'])): ref['stl']
        for task, ref in REFERENCES.items()
    }
    assert delta_m(metrics, REFERENCES) == 0.


def test_parse_fills_the_default():
    assert parse_delta_m(dict(seg=dict(metric='mIoU', stl=45))) == dict(
        seg=dict(metric='mIoU', stl=45., higher_is_better=True))


@pytest.mark.parametrize('cfg,message', [
    (dict(), 'delta_m must be a non-empty dict'),
    (dict(seg=dict(metric='mIoU')),
     "delta_m.seg must be a dict with 'metric' and 'stl'"),
    (dict(seg=dict(metric='mIoU', stl=45.2, higher_is_beter=True)),
     "delta_m.seg has unknown key(s) ['higher_is_beter']"),
    (dict(seg=dict(metric='mIoU', stl=0)),
     "delta_m.seg.stl: the single-task 'mIoU' must be a finite non-zero "
     'number (it divides), but got 0'),
    (dict(seg=dict(metric='mIoU', stl=float('nan'))), 'delta_m.seg.stl'),
    (dict(seg=dict(metric='mIoU', stl=45.2, higher_is_better='no')),
     'delta_m.seg.higher_is_better must be True or False'),
])
def test_invalid_references(cfg, message):
    with pytest.raises(ValueError, match=f'^{re.escape(message)}'):
        parse_delta_m(cfg)


def test_missing_metric_names_the_available_ones():
    metrics = {'cls/accuracy/top1': 78., 'det/coco/bbox_mAP_50': 0.6}
    with pytest.raises(
            KeyError,
            match=re.escape("delta_m.det.metric: 'coco/bbox_mAP' is not a "
                            "metric of task 'det'; its metrics are "
                            "['coco/bbox_mAP_50']")):
        delta_m(metrics, REFERENCES)
