"""The demo STL configs train, checkpoint, resume and evaluate.

Each config runs on a small copy of the generated demo data for a few
iterations through MMEngine's Runner, is resumed from its checkpoint and is
evaluated by its library's standard metric.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mtl_pvt import register_all_modules
from mtl_pvt.demo import make_demo_data

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# config -> main metric of its library's standard evaluator
DEMO_CONFIGS = {
    'pvtv2_b0_cls_demo': 'accuracy/top1',
    'pvtv2_b0_retinanet_demo': 'coco/bbox_mAP',
    'pvtv2_b0_semfpn_demo': 'mIoU',
}


@pytest.fixture(scope='module')
def small_demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    make_demo_data(
        str(root),
        cls_train_per_class=4,
        cls_val_per_class=2,
        det_train=8,
        det_val=4,
        seg_train=8,
        seg_val=4)
    return str(root)


def _relocate(cfg, old, new):
    """Replace the prefix ``old`` of every string in ``cfg`` by ``new``."""
    if isinstance(cfg, dict):
        return {k: _relocate(v, old, new) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_relocate(v, old, new) for v in cfg)
    if isinstance(cfg, str) and cfg.startswith(old):
        return new + cfg[len(old):]
    return cfg


def demo_config(name, data_root, work_dir, max_iters):
    """The demo config on ``data_root``, for ``max_iters`` iterations."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/demo/stl', name + '.py'))
    cfg = Config(_relocate(cfg.to_dict(), 'data/demo', data_root))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=max_iters, val_interval=100)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=2)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=0)
    if 'test_cfg' in cfg.model and 'score_thr' in cfg.model.test_cfg:
        # keep the boxes of a barely trained detector, so there is
        # something for CocoMetric to score
        cfg.model.test_cfg.score_thr = 0.
    return cfg


@pytest.mark.parametrize('name', sorted(DEMO_CONFIGS))
def test_train_resume_evaluate(name, small_demo_root, tmp_path):
    register_all_modules(init_default_scope=False)
    runner = Runner.from_cfg(demo_config(name, small_demo_root, tmp_path, 2))
    runner.train()
    ckpt = tmp_path / 'iter_2.pth'
    assert ckpt.is_file()
    trained = {k: v.clone() for k, v in runner.model.state_dict().items()}

    cfg = demo_config(name, small_demo_root, tmp_path, 3)
    cfg.resume, cfg.load_from = True, str(ckpt)
    resumed = Runner.from_cfg(cfg)
    resumed.load_or_resume()
    assert resumed.iter == 2
    for key, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, trained[key], msg=key)
    resumed.train()
    assert resumed.iter == 3

    metrics = resumed.test()
    key = DEMO_CONFIGS[name]
    assert key in metrics
    # mmdet's CocoMetric and mmseg's IoUMetric report fractions / percent
    assert 0 <= metrics[key] <= 100
