"""Merging of the tools' command-line arguments into the config."""
import argparse
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mtl_pvt.engine.cli import (add_common_args, apply_test_args,
                                apply_train_args, enable_visualization,
                                load_config)
from mtl_pvt.utils import register_all_modules

# The visualization hooks of mmdet, mmseg and mmpretrain.
DET_HOOK = dict(type='mmdet.DetVisualizationHook')
SEG_HOOK = dict(type='SegVisualizationHook', _scope_='mmseg')
CLS_HOOK = dict(type='mmpretrain.VisualizationHook', enable=False)


def parse(config, *argv, checkpoint=None):
    """Arguments as the tools parse them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--resume', nargs='?', const='auto')
    parser.add_argument('--amp', action='store_true')
    parser.add_argument('--auto-scale-lr', action='store_true')
    parser.add_argument('--out')
    parser.add_argument('--show-dir')
    parser.add_argument('--interval', type=int, default=1)
    add_common_args(parser)
    args = parser.parse_args([str(config), *argv])
    args.checkpoint = checkpoint
    return args


def test_work_dir_and_options(tiny_cls_config, tmp_path):
    cfg = load_config(parse(tiny_cls_config))
    assert cfg.work_dir == './work_dirs/tiny_cls'
    assert cfg.launcher == 'none'
    cfg = load_config(
        parse(tiny_cls_config, '--work-dir', 'wd', '--cfg-options',
              'train_cfg.max_iters=9', 'work_dir=ignored'))
    assert cfg.work_dir == 'wd'
    assert cfg.train_cfg.max_iters == 9
    cfg = load_config(
        parse(tiny_cls_config, '--cfg-options', 'work_dir=from_cfg'))
    assert cfg.work_dir == 'from_cfg'


@pytest.mark.parametrize('argv,resume,load_from', [
    ([], False, None),
    (['--resume'], True, None),
    (['--resume', 'wd/iter_2.pth'], True, 'wd/iter_2.pth'),
])
def test_resume(tiny_cls_config, argv, resume, load_from):
    args = parse(tiny_cls_config, *argv)
    cfg = load_config(args)
    apply_train_args(cfg, args)
    assert cfg.get('resume', False) == resume
    assert cfg.get('load_from') == load_from


def test_amp(tiny_cls_config):
    args = parse(tiny_cls_config, '--amp')
    cfg = load_config(args)
    if torch.cuda.is_available():
        apply_train_args(cfg, args)
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.loss_scale == 'dynamic'
    else:
        with pytest.raises(RuntimeError, match='--amp needs a GPU'):
            apply_train_args(cfg, args)


def test_auto_scale_lr(tiny_cls_config):
    args = parse(tiny_cls_config, '--auto-scale-lr')
    cfg = load_config(args)
    with pytest.raises(RuntimeError, match='base_batch_size'):
        apply_train_args(cfg, args)
    cfg.auto_scale_lr = dict(base_batch_size=256)
    apply_train_args(cfg, args)
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)


def test_out_must_be_a_pickle(tiny_cls_config):
    args = parse(tiny_cls_config, '--out', 'preds.json', checkpoint='a.pth')
    with pytest.raises(ValueError, match='--out must be a .pkl'):
        apply_test_args(load_config(args), args)


@pytest.mark.parametrize('hook,expected', [
    (DET_HOOK, dict(draw=True, test_out_dir='{show}')),
    (SEG_HOOK, dict(draw=True, interval=2)),
    (CLS_HOOK, dict(enable=True, out_dir='{show}', interval=2)),
])
def test_show_dir_per_library(hook, expected):
    register_all_modules(init_default_scope=False)
    cfg = Config(
        dict(
            default_scope='mtl_pvt',
            default_hooks=dict(visualization=hook),
            visualizer=dict(type='Visualizer')))
    enable_visualization(cfg, 'vis', interval=2)
    show = osp.abspath('vis')
    for key, value in expected.items():
        value = value.format(show=show) if isinstance(value, str) else value
        assert cfg.default_hooks.visualization[key] == value
    # mmseg's hook writes through the visualizer's backends.
    save_dir = show if hook is SEG_HOOK else None
    assert cfg.visualizer.get('save_dir') == save_dir


def test_show_dir_custom_hook_and_missing_hook():
    register_all_modules(init_default_scope=False)
    cfg = Config(dict(custom_hooks=[DET_HOOK]))
    enable_visualization(cfg, '/tmp/vis')
    assert cfg.custom_hooks[0].test_out_dir == '/tmp/vis'
    with pytest.raises(RuntimeError, match='--show-dir needs a visualiz'):
        enable_visualization(Config(dict(default_hooks={})), 'vis')
