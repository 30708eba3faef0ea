"""The demo multi-task configs: train, validate, test, resume, DDP on CPU.

Everything runs on a small copy of the demo data, generated in a temporary
folder that becomes the working directory, so the configs' relative
``data/demo/...`` roots point at it.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mtl_pvt import register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs/demo/mtl')
METRICS = {'cls/accuracy/top1', 'det/coco/bbox_mAP', 'seg/mIoU', 'mtl/delta_m'}


def small(cfg, work_dir, max_iters, val_interval=None):
    """The demo config with small batches, no workers, few iterations."""
    cfg.train_dataloader.batch_sampler.batch_sizes = dict(cls=2, det=2, seg=2)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    for key in ('val_dataloader', 'test_dataloader'):
        for loader in cfg[key].values():
            loader.update(num_workers=0, persistent_workers=False)
    # an untrained detector scores below mmdet's 0.05 threshold
    cfg.model.tasks.det.test_cfg.score_thr = 0.
    cfg.train_cfg.update(
        max_iters=max_iters, val_interval=val_interval or max_iters)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.update(interval=max_iters, save_best=None)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = str(work_dir)
    return cfg


def load(name):
    return Config.fromfile(osp.join(DEMO, name + '.py'))


def runner(cfg, name):
    register_all_modules(init_default_scope=False)
    cfg.experiment_name = name  # runners made in the same second
    return Runner.from_cfg(cfg)


def _train(cfg, name):
    run = runner(cfg, name)
    run.train()
    return {k: v.clone() for k, v in run.model.state_dict().items()}


def test_train_validate_and_test(demo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(demo_root)
    cfg = small(load('pvtv2_b0_full_share_demo'), tmp_path, 2)
    trainer = runner(cfg, 'train')
    trainer.train()
    # RuntimeInfoHook keeps the last validation's metrics as 'val/...'
    val = {
        k: v
        for k, v in trainer.message_hub.log_scalars.items()
        if k.startswith('val/')
    }
    assert {f'val/{k}' for k in METRICS} <= set(val)

    cfg = small(load('pvtv2_b0_full_share_demo'), tmp_path, 2)
    cfg.load_from = str(tmp_path / 'iter_2.pth')
    metrics = runner(cfg, 'test').test()
    assert METRICS <= set(metrics)
    for key in METRICS:
        assert metrics[key] == pytest.approx(val[f'val/{key}'].current())


def test_dist_train_on_cpu(demo_root, tmp_path):
    """tools/dist_train.sh, 2 CPU processes, on the alternating demo: the
    multi-task dataset, sampler and loops under DDP, with the unused task
    branches of each step (find_unused_parameters). Joint steps under DDP:
    tests/test_engine/test_multi_task_optim_wrapper_ddp.py (2 processes
    equal one on the union batch); the launcher: tests/test_tools/
    test_dist.py."""
    name = 'pvtv2_b0_full_share_alternating_demo'
    options = [
        'train_dataloader.batch_sampler.batch_sizes.cls=2',
        'train_dataloader.batch_sampler.batch_sizes.det=2',
        'train_dataloader.batch_sampler.batch_sizes.seg=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_cfg.max_iters=3',
        'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=3',
        'param_scheduler=[]',
        'model.tasks.det.test_cfg.score_thr=0.',
    ]
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT='29531',
        CUDA_VISIBLE_DEVICES='',
        PYTHONPATH=REPO)
    result = subprocess.run([
        'bash',
        osp.join(REPO, 'tools/dist_train.sh'),
        osp.join(DEMO, name + '.py'), '2', '--work-dir',
        str(tmp_path), '--cfg-options', *options
    ],
                            cwd=demo_root,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-3000:]
    assert (tmp_path / 'iter_3.pth').is_file()
    log = result.stdout + result.stderr
    assert 'find_unused_parameters=True' in log
