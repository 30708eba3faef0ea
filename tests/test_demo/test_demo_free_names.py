"""Task names are free: a demo model with two classification tasks
(``imnet``, ``places``) and a detection task (``coco``) trains, validates,
tests, is reported against its matched single-task runs, infers and is
exported to mmpretrain / mmdet, from its config alone
(configs/demo/mtl/pvtv2_b0_partial_share_s2_free_names_demo.py)."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mtl_pvt import register_all_modules
from mtl_pvt.apis import MultiTaskInferencer, build_model_from_config
from mtl_pvt.converters import mtl_to_stl, save_exports
from mtl_pvt.study.matched import matched_stl_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/demo/mtl',
                  'pvtv2_b0_partial_share_s2_free_names_demo.py')
TASKS = ('imnet', 'places', 'coco')
KINDS = dict(imnet='cls', places='cls', coco='det')
METRICS = {'imnet/accuracy/top1', 'places/accuracy/top1', 'coco/coco/bbox_mAP'}


def small(cfg, work_dir, max_iters):
    """The config with one sample per task and step, no workers, a
    validation and a checkpoint at the end."""
    sizes = cfg.train_dataloader.batch_sampler.batch_sizes
    cfg.train_dataloader.batch_sampler.batch_sizes = {t: 1 for t in sizes}
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    for key in ('val_dataloader', 'test_dataloader'):
        for loader in cfg[key].values():
            loader.update(num_workers=0, persistent_workers=False)
    if 'coco' in cfg.model.tasks:
        # an untrained detector scores below mmdet's 0.05 threshold
        cfg.model.tasks.coco.test_cfg.score_thr = 0.
    cfg.train_cfg.update(max_iters=max_iters, val_interval=max_iters)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.update(interval=max_iters)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = str(work_dir)
    return cfg


def train_and_test(cfg, name):
    """Train (validating at the end), then test the last checkpoint, as
    tools/train.py and tools/test.py would: the work dir is the report's.
    """
    register_all_modules(init_default_scope=False)
    cfg.experiment_name = f'{name}_train'
    trainer = Runner.from_cfg(cfg)
    trainer.train()
    val = {
        k[len('val/'):]: v.current()
        for k, v in trainer.message_hub.log_scalars.items()
        if k.startswith('val/')
    }
    cfg = cfg.copy()
    cfg.load_from = osp.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}'
                             '.pth')
    cfg.experiment_name = f'{name}_test'
    return trainer.model, val, Runner.from_cfg(cfg).test()


def test_free_task_names(demo_root, demo_images, tmp_path, monkeypatch):
    monkeypatch.chdir(demo_root)
    cfg = small(Config.fromfile(CONFIG), tmp_path / 'mtl', 2)
    model, val, test = train_and_test(cfg, 'mtl')
    assert model.task_kinds == KINDS
    assert METRICS <= set(val)
    assert METRICS <= set(test)
    for key in METRICS:
        assert test[key] == pytest.approx(val[key])

    # the matched single-task runs, and the report: main metrics by kind
    from mtl_pvt.report import build_report, write_report
    stl = {}
    for task in TASKS:
        stl_cfg = small(matched_stl_config(cfg, task), tmp_path / task, 1)
        assert list(stl_cfg.model.tasks) == [task]
        train_and_test(stl_cfg, task)
        stl[task] = str(tmp_path / task)
    report = build_report(
        stl, {'free': str(tmp_path / 'mtl')},
        shapes=dict(cls=64, det=128),
        with_flops=False)
    assert report['main_metrics'] == {
        'imnet': dict(metric='accuracy/top1', higher_is_better=True),
        'places': dict(metric='accuracy/top1', higher_is_better=True),
        'coco': dict(metric='coco/bbox_mAP', higher_is_better=True)
    }
    free = next(r for r in report['runs'] if r['name'] == 'free')
    assert free['metrics'] == {
        t: test[f'{t}/{m["metric"]}']
        for t, m in report['main_metrics'].items()
    }
    write_report(report, str(tmp_path / 'report'))
    table = (tmp_path / 'report' / 'report.md').read_text()
    assert all(task in table for task in TASKS)

    # inference: each task's prediction serialised by its kind
    checkpoint = str(tmp_path / 'mtl' / 'iter_2.pth')
    inferencer = MultiTaskInferencer(
        CONFIG, checkpoint, device='cpu', show_progress=False)
    result = inferencer(demo_images['cls'], out_dir=str(tmp_path / 'infer'))
    pred = result['predictions'][0]
    assert set(pred) == set(TASKS)
    for task in ('imnet', 'places'):
        assert len(pred[task]['topk_classes']) == 4
        assert pred[task]['pred_class'] in ('car', 'bus', 'clock', 'bottle')
    assert {'labels', 'scores', 'bboxes'} <= set(pred['coco'])
    assert glob.glob(str(tmp_path / 'infer' / 'vis' / '*'))

    # export: imnet and places as mmpretrain models, coco as an mmdet one
    paths = save_exports(
        mtl_to_stl(CONFIG, checkpoint), str(tmp_path / 'export'), 'free')
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)
    scopes = dict(imnet='mmpretrain', places='mmpretrain', coco='mmdet')
    for task, (config, weights) in paths.items():
        exported = Config.fromfile(config)
        assert exported.default_scope == scopes[task]
        assert 'mtl_pvt' not in open(config).read()
        plain = build_model_from_config(exported)
        ckpt = torch.load(weights, map_location='cpu', weights_only=False)
        plain.load_state_dict(ckpt['state_dict'], strict=True)
        # the task's own modules are the MTL model's, bit for bit
        for key, value in plain.state_dict().items():
            if not key.startswith('backbone.'):
                assert torch.equal(value,
                                   state['state_dict'][f'tasks.{task}.{key}'])
        assert json.dumps(ckpt['meta']['dataset_meta'])
