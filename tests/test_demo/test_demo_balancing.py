"""The demo balancing configs train, and resume exactly.

Each config of ``configs/demo/mtl/*_{uw,pcgrad,famo}_demo.py`` trains a few
iterations on a small copy of the demo data; an interrupted and resumed
run ends with exactly the weights of an uninterrupted one, so the
weighting's state (learned log-variances, FAMO's logits and optimizer,
PCGrad's random stream) goes through the checkpoint.
"""
import pytest
import torch
from test_demo_mtl import _train, load, small

# (config, extra optim_wrapper keys): FAMO's config with PCGrad added
# checks both states (FAMO's logits and Adam, PCGrad's random stream) in
# one run; the uncertainty weighting config its learned log-variances.
CONFIGS = {
    'uw': ('pvtv2_b0_full_share_uw_demo', {}),
    'famo+pcgrad':
    ('pvtv2_b0_full_share_famo_demo', dict(aggregator=dict(type='PCGrad'))),
}


def balanced(name, work_dir, max_iters):
    config, extra = CONFIGS[name]
    cfg = small(load(config), work_dir, max_iters, val_interval=100)
    cfg.optim_wrapper.update(extra)
    cfg.default_hooks.checkpoint.interval = 2
    # no validation: mmengine's loop validates at the last iteration
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.optim_wrapper.stats_interval = 1
    return cfg


@pytest.mark.parametrize('name', list(CONFIGS))
def test_resume_equals_uninterrupted_run(name, demo_root, tmp_path,
                                         monkeypatch):
    monkeypatch.chdir(demo_root)
    straight = _train(balanced(name, tmp_path / 'a', 4), f'{name}-a')
    _train(balanced(name, tmp_path / 'b', 2), f'{name}-b')
    second = balanced(name, tmp_path / 'b', 4)
    second.resume, second.load_from = True, str(tmp_path / 'b/iter_2.pth')
    resumed = _train(second, f'{name}-c')
    state = torch.load(tmp_path / 'b/iter_4.pth')['optimizer']
    assert state['mtl']['updates'] == 4
    for key, value in straight.items():
        torch.testing.assert_close(resumed[key], value, msg=key)
