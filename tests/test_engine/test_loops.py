"""MultiTaskValLoop / MultiTaskTestLoop on the b0 demo multi-task model.

A real Runner evaluates an untrained MultiTaskModel (the b0 full-share
model with the three demo task models) on a small copy of the generated
demo data, each task with its own standard dataloader and evaluator.
"""
import argparse
import itertools
import os.path as osp
import pickle
import re

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mtl_pvt import register_all_modules
from mtl_pvt.demo import make_demo_data
from mtl_pvt.engine import MultiTaskTestLoop, MultiTaskValLoop
from mtl_pvt.engine.cli import add_dump_results, apply_test_args
from mtl_pvt.engine.runner import loops

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_BASES = dict(
    cls='pvtv2_b0_demo_cls',
    det='pvtv2_b0_demo_retinanet',
    seg='pvtv2_b0_demo_semfpn')
DATA_BASES = dict(cls='demo_imagenet', det='demo_coco', seg='demo_ade20k')
DELTA_M = dict(
    cls=dict(metric='accuracy/top1', stl=80.),
    det=dict(metric='coco/bbox_mAP', stl=0.5),
    seg=dict(metric='mIoU', stl=40., higher_is_better=True))
COCO_KEYS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
METRIC_KEYS = {
    'cls/accuracy/top1', *(f'det/coco/bbox_{k}' for k in COCO_KEYS),
    'seg/aAcc', 'seg/mIoU', 'seg/mAcc', 'mtl/delta_m'
}
_RUN_IDS = itertools.count()


class RecordHook(Hook):
    """Records the val and test hook calls, with each batch's tasks."""

    def __init__(self):
        self.calls = []

    def _before_epoch(self, runner, mode='train'):
        self.calls.append(f'before_{mode}_epoch')

    def _before_iter(self, runner, batch_idx, data_batch=None, mode='train'):
        self.calls.append(
            (f'before_{mode}_iter', batch_idx, _tasks(data_batch)))

    def _after_iter(self,
                    runner,
                    batch_idx,
                    data_batch=None,
                    outputs=None,
                    mode='train'):
        self.calls.append(
            (f'after_{mode}_iter', batch_idx, _tasks(data_batch)))

    def before_val(self, runner):
        self.calls.append('before_val')

    def after_val_epoch(self, runner, metrics=None):
        self.calls.append(('after_val_epoch', sorted(metrics)))

    def after_val(self, runner):
        self.calls.append('after_val')

    def before_test(self, runner):
        self.calls.append('before_test')

    def after_test_epoch(self, runner, metrics=None):
        self.calls.append(('after_test_epoch', sorted(metrics)))

    def after_test(self, runner):
        self.calls.append('after_test')


def _tasks(data_batch):
    """The tasks in a batch's data samples' metainfo, e.g. 'cls'."""
    return ','.join(sorted({s.task for s in data_batch['data_samples']}))


def _relocate(cfg, old, new):
    """Replace the prefix ``old`` of every string in ``cfg`` by ``new``."""
    if isinstance(cfg, dict):
        return {k: _relocate(v, old, new) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_relocate(v, old, new) for v in cfg)
    if isinstance(cfg, str) and cfg.startswith(old):
        return new + cfg[len(old):]
    return cfg


def _base(*path):
    return Config.fromfile(osp.join(REPO, 'configs', *path) + '.py')


@pytest.fixture(scope='module')
def demo_cfg(tmp_path_factory):
    """Model, dataloaders and evaluators of the demo tasks on small data."""
    root = str(tmp_path_factory.mktemp('demo'))
    make_demo_data(
        root,
        cls_train_per_class=2,
        cls_val_per_class=2,
        det_train=4,
        det_val=4,
        seg_train=4,
        seg_val=4)
    model = _base('mtl', 'pvtv2_b0_full_share').model
    model.backbone.init_cfg = None  # no download
    model.tasks = {
        task: _base('_base_', 'models', base)[f'{task}_model']
        for task, base in MODEL_BASES.items()
    }
    # untrained: every box must reach CocoMetric
    model.tasks.det.test_cfg.score_thr = 0.
    cfg = dict(model=model)
    for task, base in DATA_BASES.items():
        data = _base('_base_', 'datasets', base).to_dict()
        data = _relocate(data, 'data/demo', root)
        for stage in ('val', 'test'):
            loader = data[f'{task}_{stage}_dataloader']
            loader.update(
                batch_size=4, num_workers=0, persistent_workers=False)
            evaluator = data[f'{task}_{stage}_evaluator']
            cfg.setdefault(f'{stage}_dataloader', {})[task] = loader
            cfg.setdefault(f'{stage}_evaluator', {})[task] = evaluator
    return cfg


def build_runner(demo_cfg, work_dir, **kwargs):
    register_all_modules()
    cfg = Config(demo_cfg)  # a deep copy
    return Runner(
        model=cfg.model,
        work_dir=str(work_dir),
        val_dataloader=cfg.val_dataloader,
        val_evaluator=cfg.val_evaluator,
        val_cfg=dict(type='MultiTaskValLoop', delta_m=DELTA_M),
        test_dataloader=cfg.test_dataloader,
        test_evaluator=cfg.test_evaluator,
        test_cfg=dict(type='MultiTaskTestLoop', delta_m=DELTA_M),
        default_scope='mtl_pvt',
        randomness=dict(seed=0),
        experiment_name=f'test_loops_{next(_RUN_IDS)}',
        log_level='WARNING',
        **kwargs)


def expected_delta_m(metrics):
    """The formula of Maninis et al. on the returned metrics, all three
    tasks higher-is-better."""
    changes = [(metrics[f"{task}/{ref['metric']}"] - ref['stl']) / ref['stl']
               for task, ref in DELTA_M.items()]
    return 100 * sum(changes) / 3


def hook_calls(stage):
    """The hook calls of a run: the tasks one after the other between one
    before_<stage>_epoch and one after_<stage>_epoch; 8 cls images are two
    batches, 4 det or seg images one."""
    calls = [f'before_{stage}', f'before_{stage}_epoch']
    for task, idx in (('cls', 0), ('cls', 1), ('det', 0), ('seg', 0)):
        calls += [(f'before_{stage}_iter', idx, task),
                  (f'after_{stage}_iter', idx, task)]
    return calls + [(f'after_{stage}_epoch', sorted(METRIC_KEYS)),
                    f'after_{stage}']


@pytest.mark.parametrize('stage', ['val', 'test'])
def test_metrics_hooks_and_delta_m(demo_cfg, tmp_path, stage):
    record = RecordHook()
    runner = build_runner(demo_cfg, tmp_path, custom_hooks=[record])
    metrics = getattr(runner, stage)()

    assert set(metrics) == METRIC_KEYS
    assert metrics['mtl/delta_m'] == pytest.approx(expected_delta_m(metrics))
    assert record.calls == hook_calls(stage)

    loop = getattr(runner, f'{stage}_loop')
    loop_type = MultiTaskValLoop if stage == 'val' else MultiTaskTestLoop
    assert type(loop) is loop_type
    assert list(loop.dataloaders) == ['cls', 'det', 'seg']
    assert list(loop.evaluators) == list(loop.dataloaders)
    # runner.val_dataloader / val_evaluator: the first task's after a run
    assert getattr(runner, f'{stage}_dataloader') is loop.dataloaders['cls']
    assert getattr(runner, f'{stage}_evaluator') is loop.evaluators['cls']
    assert loop.task is None
    for task, evaluator in loop.evaluators.items():
        dataset = loop.dataloaders[task].dataset
        assert evaluator.dataset_meta == dataset.metainfo


def test_single_dataloader_is_refused(demo_cfg, tmp_path):
    runner = build_runner(demo_cfg, tmp_path)
    cfg = Config(demo_cfg)
    message = ('MultiTaskValLoop takes val_dataloader as a dict of task '
               'name -> dataloader config')
    with pytest.raises(TypeError, match=re.escape(message)):
        MultiTaskValLoop(runner, cfg.val_dataloader.cls, cfg.val_evaluator)


@pytest.mark.parametrize('change,message', [
    (dict(dataloader=['seg']),
     "task names differ: model.tasks has ['cls', 'det', 'seg'] but "
     "val_dataloader has ['cls', 'det']"),
    (dict(evaluator=['seg']),
     "task names differ: model.tasks has ['cls', 'det', 'seg'] but "
     "val_evaluator has ['cls', 'det']"),
    (dict(delta_m=['det']),
     "task names differ: model.tasks has ['cls', 'det', 'seg'] but "
     "val_cfg.delta_m has ['cls', 'seg']"),
])
def test_task_names_must_agree(demo_cfg, tmp_path, change, message):
    runner = build_runner(demo_cfg, tmp_path)
    cfg = Config(demo_cfg)
    kwargs = dict(
        dataloader=dict(cfg.val_dataloader),
        evaluator=dict(cfg.val_evaluator),
        delta_m=dict(DELTA_M))
    for key, tasks in change.items():
        for task in tasks:
            kwargs[key].pop(task)
    with pytest.raises(ValueError, match=f'^{re.escape(message)}$'):
        MultiTaskValLoop(runner, **kwargs)


def test_invalid_reference(demo_cfg, tmp_path):
    runner = build_runner(demo_cfg, tmp_path)
    cfg = Config(demo_cfg)
    delta_m = dict(DELTA_M, det=dict(metric='coco/bbox_mAP', stl=0))
    with pytest.raises(ValueError, match=r"^delta_m\.det\.stl: the single"):
        MultiTaskTestLoop(
            runner, cfg.test_dataloader, cfg.test_evaluator, delta_m=delta_m)


def test_unknown_metric_fails_after_its_task(demo_cfg, tmp_path):
    record = RecordHook()
    runner = build_runner(demo_cfg, tmp_path, custom_hooks=[record])
    cfg = Config(demo_cfg)
    delta_m = dict(DELTA_M, cls=dict(metric='accuracy/top5', stl=90.))
    loop = MultiTaskValLoop(
        runner, cfg.val_dataloader, cfg.val_evaluator, delta_m=delta_m)
    message = ("delta_m.cls.metric: 'accuracy/top5' is not a metric of task "
               "'cls'; its metrics are ['accuracy/top1']")
    with pytest.raises(KeyError, match=re.escape(message)):
        loop.run()
    # the other tasks did not run
    assert {c[2] for c in record.calls if isinstance(c, tuple)} == {'cls'}


def test_task_without_metrics_skips_delta_m(demo_cfg, tmp_path):
    """mmdet's CocoMetric returns {} when no box passes score_thr: the
    validation goes on, without delta-m."""
    cfg = Config(demo_cfg)
    cfg.model.tasks.det.test_cfg.score_thr = 1.1  # keeps no box
    runner = build_runner(cfg.to_dict(), tmp_path)
    metrics = runner.val()
    assert 'mtl/delta_m' not in metrics
    assert not [k for k in metrics if k.startswith('det/')]
    assert {'cls/accuracy/top1', 'seg/mIoU'} <= set(metrics)


def test_tools_out_and_show_dir(demo_cfg, tmp_path):
    """tools/test.py: --out dumps a file per task; --show-dir refuses."""
    runner = build_runner(demo_cfg, tmp_path)
    add_dump_results(runner, str(tmp_path / 'results.pkl'))
    runner.test()
    dumped = dict(
        cls=(8, 'pred_label'),
        det=(4, 'pred_instances'),
        seg=(4, 'pred_sem_seg'))
    for task, (num, key) in dumped.items():
        path = tmp_path / f'results_{task}.pkl'
        results = pickle.loads(path.read_bytes())
        assert len(results) == num
        assert all(r['task'] == task and key in r for r in results)

    args = argparse.Namespace(
        checkpoint='a.pth', out=None, show_dir='vis', interval=1)
    message = '--show-dir is not supported for multi-task configs'
    with pytest.raises(RuntimeError, match=message):
        apply_test_args(Config(demo_cfg), args)


def test_label_outside_the_class_range_stops_the_validation(
        demo_cfg, tmp_path, monkeypatch):
    """Every batch is checked against its dataset's classes before the
    model and the metric see it (here: the classes said to be 2)."""
    monkeypatch.setattr(loops, 'dataset_limits', lambda dataset: (2, 255))
    runner = build_runner(demo_cfg, tmp_path)
    with pytest.raises(
            ValueError,
            match=r"^task 'cls': .*\.JPEG: class "
            r'label value\(s\) \[\d\] outside the 2 classes 0\.\.1$'):
        runner.val()
