"""Main metrics by task kind: a report over runs whose tasks have free
names (``imnet``, a classifier; ``coco``, a detector), on fake work dirs
of the demo configs."""
import os.path as osp

import pytest

from mtl_pvt.report import (build_report, format_markdown, load_run,
                            parse_main_metrics)
from mtl_pvt.testing.fake_runs import write_run

DEMO = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'demo')
STL_CONFIGS = dict(
    imnet='stl/pvtv2_b0_cls_demo.py', coco='stl/pvtv2_b0_retinanet_demo.py')
# the demo full-share model, its cls and det tasks renamed
MTL_CONFIG = """_base_ = [{base!r}]
model = dict(
    tasks=dict(
        _delete_=True,
        imnet=_base_.model.tasks.cls,
        coco=_base_.model.tasks.det),
    loss_weights=dict(_delete_=True, imnet=1., coco=1.))
"""
STL_TEST = dict(
    imnet={
        'accuracy/top1': 80.,
        'accuracy/top5': 99.,
        'time': 0.1
    },
    coco={
        'coco/bbox_mAP': 0.40,
        'coco/bbox_mAP_50': 0.60,
        'time': 0.2
    })
MTL_TEST = {  # +5 %, -10 %; bbox_mAP_50 +50 %
    'imnet/accuracy/top1': 84.,
    'imnet/accuracy/top5': 10.,
    'coco/coco/bbox_mAP': 0.36,
    'coco/coco/bbox_mAP_50': 0.90,
    'time': 0.5
}
STL_LINES = [dict(loss=1., time=0.1, iter=5, step=5)]
MTL_LINES = [{
    'loss': 2.,
    'imnet.loss_sum': 1.,
    'coco.loss_sum': 1.,
    'imnet.samples_seen': 30,
    'coco.samples_seen': 20,
    'time': 1.,
    'iter': 5,
    'step': 5
}]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('free_names')
    stl = {
        task:
        write_run(root / f'stl_{task}',
                  f'_base_ = [{osp.join(DEMO, config)!r}]\n', STL_LINES,
                  STL_TEST[task])
        for task, config in STL_CONFIGS.items()
    }
    base = osp.join(DEMO, 'mtl', 'pvtv2_b0_full_share_demo.py')
    mtl = dict(
        joint=write_run(root / 'joint', MTL_CONFIG.format(
            base=base), MTL_LINES, MTL_TEST))
    return dict(stl=stl, mtl=mtl)


def test_kinds_read_from_the_configs(runs):
    assert load_run(runs['stl']['imnet'],
                    'imnet')['kinds'] == dict(imnet='cls')
    assert load_run(runs['stl']['coco'], 'coco')['kinds'] == dict(coco='det')
    assert load_run(runs['mtl']['joint'])['kinds'] == dict(
        imnet='cls', coco='det')


def test_main_metrics_by_kind(runs):
    report = build_report(
        runs['stl'],
        runs['mtl'],
        shapes=dict(cls=32, det=(32, 48)),
        with_flops=False)
    assert report['tasks'] == ['imnet', 'coco']
    assert report['main_metrics'] == dict(
        imnet=dict(metric='accuracy/top1', higher_is_better=True),
        coco=dict(metric='coco/bbox_mAP', higher_is_better=True))
    stl, joint = report['runs']
    assert stl['metrics'] == dict(imnet=80., coco=0.4)
    assert joint['metrics'] == dict(imnet=84., coco=0.36)
    assert joint['changes'] == pytest.approx(dict(imnet=5., coco=-10.))
    assert joint['delta_m'] == pytest.approx(-2.5)
    # input shapes keyed by kind
    assert joint['input_shapes'] == dict(imnet=[32, 32], coco=[32, 48])
    assert stl['input_shapes'] == joint['input_shapes']
    assert '| coco | `coco/bbox_mAP` | higher |' in format_markdown(report)


def test_explicit_main_metric_overrides_the_kind(runs):
    report = build_report(
        runs['stl'],
        runs['mtl'],
        main_metrics=dict(coco='coco/bbox_mAP_50'),
        with_flops=False)
    assert report['main_metrics']['coco']['metric'] == 'coco/bbox_mAP_50'
    assert report['main_metrics']['imnet']['metric'] == 'accuracy/top1'
    assert report['runs'][1]['changes'] == pytest.approx(
        dict(imnet=5., coco=50.))


def test_task_of_no_known_kind_needs_a_main_metric():
    with pytest.raises(ValueError) as error:
        parse_main_metrics(['imnet', 'depth'], None,
                           dict(imnet='cls', depth=None))
    message = str(error.value)
    assert "task 'depth' is of no known task kind" in message
    assert 'give it in main_metrics' in message
    assert parse_main_metrics(['depth'], dict(depth='rmse'), dict(
        depth=None)) == dict(depth=dict(metric='rmse', higher_is_better=True))
