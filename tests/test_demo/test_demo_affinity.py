"""The affinity loop on the demo: measure, suggest a tree, train it.

The full-sharing affinity demo config trains a few iterations with the
lookahead measured at every one; ``suggest_branching.py`` reads the run's
log and writes a config of the suggested tree, which trains.
"""
import json
import os.path as osp

import torch
from test_demo_mtl import load, runner, small

from mtl_pvt.testing.tools import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO,
                  'configs/demo/mtl/pvtv2_b0_full_share_affinity_demo.py')


def suggest_branching():
    return load_tool('tools/analysis_tools/suggest_branching.py')


def test_measure_suggest_and_train(demo_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(demo_root)
    cfg = small(load('pvtv2_b0_full_share_affinity_demo'), tmp_path / 'run', 2)
    assert cfg.custom_hooks[-1].type == 'TaskAffinityHook'
    cfg.custom_hooks[-1].interval = 1
    one_sample_per_task(cfg)
    runner(cfg, 'affinity').train()

    out = tmp_path / 'suggested.py'
    result = suggest_branching().main([
        CONFIG,
        str(tmp_path / 'run'), '--z', '0', '--max-branches', '2', '--out',
        str(out), '--json',
        str(tmp_path / 'suggestion.json')
    ])
    printed = capsys.readouterr().out
    assert 'mean of 2 measurement(s) at iterations [0, 1]' in printed
    assert result['num_records'] == 2
    assert result['branches'] <= 2
    assert json.load(open(tmp_path / 'suggestion.json'))['stage_groups'] == \
        result['stage_groups']
    # the written config trains with the suggested tree
    cfg = small(load_file(out), tmp_path / 'suggested', 1)
    one_sample_per_task(cfg)
    trainer = runner(cfg, 'suggested')
    trainer.train()
    assert trainer.model.backbone.stage_groups == result['stage_groups']
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def one_sample_per_task(cfg):
    cfg.train_dataloader.batch_sampler.batch_sizes = dict(cls=1, det=1, seg=1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None


def load_file(path):
    from mmengine.config import Config
    return Config.fromfile(str(path))
