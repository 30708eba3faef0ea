"""Exactness of the study's comparisons on the demo configs.

With nothing shared and the matched recipe, each task's branch of the
multi-task run gets exactly the updates of its matched single-task run:
its initialisation, data order, augmentations, stochastic depth and
gradient clipping depend on (seed, task) only. And a resumed run continues
exactly, dataloader workers included.
"""
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mtl_pvt import register_all_modules
from mtl_pvt.study.matched import matched_stl_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs/demo/mtl')
TASKS = ('cls', 'det', 'seg')


def small(name, work_dir, max_iters, workers=0):
    """A demo config trained ``max_iters`` steps of 2 samples per task,
    without validation, with its own optimiser and (shortened) schedule."""
    cfg = Config.fromfile(osp.join(DEMO, name + '.py'))
    cfg.train_dataloader.batch_sampler.batch_sizes = {t: 2 for t in TASKS}
    cfg.train_dataloader.update(
        num_workers=workers, persistent_workers=workers > 0)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.train_cfg.update(max_iters=max_iters, val_interval=max_iters)
    # the demo's warm-up, shortened to the run
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=2)
    ]
    cfg.default_hooks.checkpoint.update(interval=2, save_best=None)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = str(work_dir)
    return cfg


def train(cfg, name):
    register_all_modules(init_default_scope=False)
    cfg.experiment_name = name  # runners made in the same second
    runner = Runner.from_cfg(cfg)
    runner.train()
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_no_share_equals_the_matched_stl_runs(demo_root, tmp_path,
                                              monkeypatch):
    """The demo's drop path, dropout, augmentations (flips, crops), AdamW
    with warm-up and per-task clipping (the seg head's gradient is clipped
    at every step) all act: still bit-identical, tensor by tensor. The
    multi-task run loads with 2 workers, the single-task ones in-process."""
    monkeypatch.chdir(demo_root)
    mtl_cfg = small('pvtv2_b0_no_share_demo', tmp_path / 'mtl', 3, workers=2)
    mtl = train(copy.deepcopy(mtl_cfg), 'mtl')
    for task in TASKS:
        cfg = matched_stl_config(mtl_cfg, task)
        cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
        cfg.work_dir = str(tmp_path / task)
        stl = train(cfg, task)
        branch = tuple(f'backbone.stages.{i}.{task}.'
                       for i in range(4)) + (f'tasks.{task}.', )
        assert stl and all(k.startswith(branch) for k in stl)
        differ = [k for k, v in stl.items() if not torch.equal(v, mtl[k])]
        assert not differ, (task, differ[:5])


def test_resume_with_workers_equals_uninterrupted_run(demo_root, tmp_path,
                                                      monkeypatch):
    """Partial sharing, 2 dataloader workers: the augmentations after the
    resume are those of the uninterrupted run (seeded per sample, not per
    worker), and so are the weights, bit for bit."""
    monkeypatch.chdir(demo_root)
    name = 'pvtv2_b0_partial_share_s2_demo'
    straight = train(small(name, tmp_path / 'a', 4, workers=2), 'straight')
    train(small(name, tmp_path / 'b', 2, workers=2), 'first')
    second = small(name, tmp_path / 'b', 4, workers=2)
    second.resume, second.load_from = True, str(tmp_path / 'b/iter_2.pth')
    resumed = train(second, 'second')
    differ = [k for k, v in straight.items() if not torch.equal(resumed[k], v)]
    assert not differ, differ[:5]
