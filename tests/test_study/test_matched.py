"""Matched single-task baselines of the demo multi-task configs."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.runner import Runner

from mtl_pvt import register_all_modules
from mtl_pvt.study import matched_recipe_diff, matched_stl_config
from mtl_pvt.testing.tools import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs/demo')
TASKS = ['cls', 'det', 'seg']
MAIN = {
    'cls': 'cls/accuracy/top1',
    'det': 'det/coco/bbox_mAP',
    'seg': 'seg/mIoU'
}


def load(name):
    return Config.fromfile(osp.join(DEMO, 'mtl', name + '.py'))


def global_clip(cfg):
    """``cfg`` with mmengine's plain wrapper clipping the sum of the task
    gradients (the demo configs clip per task)."""
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
        clip_grad=dict(max_norm=35, norm_type=2))
    return cfg


def shapes(model, keep=lambda key: True):
    return {
        k: tuple(v.shape)
        for k, v in model.state_dict().items() if keep(k)
    }


def branch(task):
    """Whether a no-share state-dict key is on ``task``'s path: its copies
    of the stages (``backbone.stages.<i>.<task>``) and its task model."""
    return lambda key: key.startswith(f'tasks.{task}.') or any(
        key.startswith(f'backbone.stages.{i}.{task}.') for i in range(4))


def test_parameters_are_those_of_the_no_share_branch():
    register_all_modules()
    no_share = load('pvtv2_b0_no_share_demo')
    full_share = load('pvtv2_b0_full_share_demo')
    mtl = shapes(MODELS.build(no_share.model))
    for task in TASKS:
        stl = matched_stl_config(full_share, task)
        # every sharing gives the task a backbone of its own
        assert stl.model == matched_stl_config(no_share, task).model
        assert list(stl.model.tasks) == [task]
        assert stl.model.backbone.share_stages == 0
        assert stl.model.loss_weights == {task: 1.}
        assert shapes(MODELS.build(stl.model)) == {
            k: v
            for k, v in mtl.items() if branch(task)(k)
        }


def test_the_recipe_is_the_mtl_recipe():
    mtl = global_clip(load('pvtv2_b0_full_share_affinity_demo'))
    mtl.work_dir = 'work_dirs/somewhere'
    batch_sizes = mtl.train_dataloader.batch_sampler.batch_sizes
    for task, batch_size in batch_sizes.items():
        stl = matched_stl_config(mtl, task)
        loader = stl.train_dataloader
        assert loader.batch_sampler == dict(
            type='MultiTaskBatchSampler',
            mode='joint',
            batch_sizes={task: batch_size})
        assert loader.sampler == mtl.train_dataloader.sampler
        assert loader.dataset.datasets == {
            task: mtl.train_dataloader.dataset.datasets[task]
        }
        for key in ('train_cfg', 'param_scheduler', 'randomness', 'env_cfg',
                    'log_processor'):
            assert stl[key] == mtl[key], key
        assert stl.train_cfg.max_iters == mtl.train_cfg.max_iters == 240
        wrapper = stl.optim_wrapper
        assert wrapper.type == 'MultiTaskOptimWrapper'
        assert wrapper.optimizer == mtl.optim_wrapper.optimizer
        # the global clipping of the MTL run, per task
        assert 'clip_grad' not in wrapper
        assert wrapper.task_clip_grad == dict(max_norm=35, norm_type=2)
        notes = stl.matched_stl.notes
        assert len(notes) == 1
        assert notes[0].startswith('the MTL run clips the sum of the task '
                                   'gradients (optim_wrapper.clip_grad')
        assert stl.matched_stl.source == mtl.filename
        assert stl.matched_stl.task == task
        for stage in ('val', 'test'):
            assert list(stl[f'{stage}_dataloader']) == [task]
            assert list(stl[f'{stage}_evaluator']) == [task]
            assert stl[f'{stage}_cfg'] == dict(type=f'MultiTask'
                                               f'{stage.capitalize()}Loop')
        checkpoint = stl.default_hooks.checkpoint
        assert (checkpoint.save_best, checkpoint.rule) == (MAIN[task],
                                                           'greater')
        assert {
            k: v
            for k, v in stl.default_hooks.items() if k != 'checkpoint'
        } == {
            k: v
            for k, v in mtl.default_hooks.items() if k != 'checkpoint'
        }
        assert [h.type for h in stl.custom_hooks
                ] == ['TaskMonitorHook', 'RandomStateHook']
        assert 'work_dir' not in stl and 'delta_m' not in stl


def test_balancing_amp_and_clipping():
    uw = load('pvtv2_b0_full_share_uw_demo')
    uw.optim_wrapper.type = 'MultiTaskAmpOptimWrapper'
    uw.optim_wrapper.clip_grad = dict(max_norm=35, norm_type=2)
    uw.optim_wrapper.task_clip_grad = dict(max_norm=10)
    uw.optim_wrapper.accumulative_counts = 2
    stl = matched_stl_config(uw, 'seg')
    assert stl.optim_wrapper == dict(
        type='MultiTaskAmpOptimWrapper',
        optimizer=uw.optim_wrapper.optimizer,
        accumulative_counts=2,
        clip_grad=dict(max_norm=35, norm_type=2),
        task_clip_grad=dict(max_norm=10))
    notes = stl.matched_stl.notes
    assert notes[0] == ("the MTL run weights the losses with "
                        "'UncertaintyWeighting' (optim_wrapper.weighting): "
                        'the STL baseline is unweighted')
    assert 'and then their sum' in notes[1]
    # mmengine's AMP wrapper: the multi-task one
    amp = global_clip(load('pvtv2_b0_full_share_demo'))
    amp.optim_wrapper.type = 'AmpOptimWrapper'
    assert matched_stl_config(amp, 'det').optim_wrapper.type == \
        'MultiTaskAmpOptimWrapper'

    pcgrad = load('pvtv2_b0_full_share_famo_demo')
    pcgrad.optim_wrapper.aggregator = dict(type='PCGrad')
    stl = matched_stl_config(pcgrad, 'cls')
    assert 'weighting' not in stl.optim_wrapper
    assert 'aggregator' not in stl.optim_wrapper
    # FAMO's hook goes with the weighting
    assert 'LossWeightingHook' not in [h.type for h in stl.custom_hooks]
    assert any("with 'PCGrad' (optim_wrapper.aggregator)" in note
               for note in stl.matched_stl.notes)


def test_save_best_without_a_reference(monkeypatch):
    cfg = load('pvtv2_b0_full_share_demo')
    del cfg.val_cfg.delta_m['det']
    del cfg.test_cfg.delta_m['det']
    del cfg.delta_m['det']
    # the main metric of the task's kind
    checkpoint = matched_stl_config(cfg, 'det').default_hooks.checkpoint
    assert (checkpoint.save_best, checkpoint.rule) == ('det/coco/bbox_mAP',
                                                       'greater')
    # a task of no known kind: removed
    monkeypatch.setattr('mtl_pvt.tasks.config_task_kinds', lambda *_: {})
    stl = matched_stl_config(cfg, 'det')
    assert 'save_best' not in stl.default_hooks.checkpoint
    assert 'rule' not in stl.default_hooks.checkpoint
    assert "save_best='mtl/delta_m' has no single-task counterpart" in \
        stl.matched_stl.notes[0]
    # a lower-is-better main metric
    cfg.val_cfg.delta_m['seg'] = dict(
        metric='loss', stl=1., higher_is_better=False)
    checkpoint = matched_stl_config(cfg, 'seg').default_hooks.checkpoint
    assert (checkpoint.save_best, checkpoint.rule) == ('seg/loss', 'less')


def test_errors():
    stl = Config.fromfile(osp.join(DEMO, 'stl', 'pvtv2_b0_cls_demo.py'))
    with pytest.raises(
            ValueError,
            match='pvtv2_b0_cls_demo.py is not a '
            'multi-task config: model.type is '
            "'ImageClassifier'"):
        matched_stl_config(stl, 'cls')
    cfg = load('pvtv2_b0_full_share_demo')
    with pytest.raises(
            ValueError,
            match=r"has no task 'depth'; its tasks are \['cls', 'det', "
            r"'seg'\]"):
        matched_stl_config(cfg, 'depth')
    alternating = load('pvtv2_b0_full_share_alternating_demo')
    with pytest.raises(
            ValueError,
            match="train_dataloader.batch_sampler.mode is 'alternating': in "
            "alternating steps each task's updates are interleaved"):
        matched_stl_config(alternating, 'cls')
    cfg.optim_wrapper.type = 'MyWrapper'
    with pytest.raises(ValueError, match="optim_wrapper.type is 'MyWrapper'"):
        matched_stl_config(cfg, 'cls')


def test_recipe_diff():
    no_share = load('pvtv2_b0_no_share_demo')
    for name in ('full_share', 'full_share_affinity', 'partial_share_s2'):
        other = load(f'pvtv2_b0_{name}_demo')
        for task in TASKS:
            assert matched_recipe_diff(no_share, other, task) == []
    assert matched_recipe_diff(no_share, load('pvtv2_b0_full_share_uw_demo'),
                               'det') == ['optim_wrapper.weighting']
    other = global_clip(load('pvtv2_b0_full_share_demo'))
    other.train_dataloader.batch_sampler.batch_sizes.det = 8
    other.param_scheduler = other.param_scheduler[:1]
    # the same clipping of one task's gradient, not of the sum
    no_share.optim_wrapper = dict(
        type='MultiTaskOptimWrapper',
        optimizer=other.optim_wrapper.optimizer,
        task_clip_grad=other.optim_wrapper.clip_grad)
    assert matched_recipe_diff(no_share, other, 'cls') == [
        'optim_wrapper.clip_grad', 'param_scheduler'
    ]
    assert matched_recipe_diff(no_share, other, 'det') == [
        'optim_wrapper.clip_grad', 'param_scheduler',
        'train_dataloader.batch_sampler.batch_sizes.det'
    ]
    other.optim_wrapper.type = 'AdamW'
    no_share.optim_wrapper.type = 'MultiTaskAmpOptimWrapper'
    with pytest.raises(ValueError, match="optim_wrapper.type is 'AdamW'"):
        matched_recipe_diff(no_share, other, 'cls')
    # alternating steps are compared, not refused
    assert 'train_dataloader.batch_sampler.mode' in matched_recipe_diff(
        no_share, load('pvtv2_b0_full_share_alternating_demo'), 'seg')


def test_the_baseline_trains(tiny_demo_root, tmp_path, monkeypatch,
                             plain_config_text):
    monkeypatch.chdir(tiny_demo_root)
    # one thread: a tiny model's operators on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = matched_stl_config(load('pvtv2_b0_full_share_demo'), 'cls')
    cfg.train_dataloader.batch_sampler.batch_sizes.cls = 2
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.train_cfg.max_iters = 1
    cfg.param_scheduler = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.update(interval=1, save_best=None)
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(tmp_path)
    register_all_modules(init_default_scope=False)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
    finally:
        torch.set_num_threads(threads)
    logged = runner.message_hub.log_scalars
    assert 'train/cls.loss' in logged
    assert not any(k.startswith(('train/det.', 'train/seg.')) for k in logged)
    assert runner.optim_wrapper.task_clip_grad == dict(
        max_norm=35, norm_type=2)
    assert (tmp_path / 'iter_1.pth').is_file()


def test_tool_writes_the_configs(tmp_path, capsys, plain_config_text):
    tool = load_tool('tools/misc/matched_stl.py')
    config = tmp_path / 'clip_sum.py'
    config.write_text(
        f"_base_ = [{osp.join(DEMO, 'mtl', 'pvtv2_b0_no_share_demo.py')!r}]\n"
        "optim_wrapper = dict(_delete_=True, type='OptimWrapper', "
        "optimizer=dict(type='AdamW', lr=1e-3), clip_grad=dict(max_norm=1))\n")
    config = str(config)
    out_dir = tmp_path / 'out'
    written = tool.main(
        [config, '--tasks', 'det', 'cls', '--out-dir',
         str(out_dir)])
    assert written == {
        t: str(out_dir / f'clip_sum_stl_{t}.py')
        for t in ('det', 'cls')
    }
    printed = capsys.readouterr().out
    assert f'det: {written["det"]}\n  not matched: the MTL run clips' in \
        printed
    for task, path in written.items():
        assert Config.fromfile(path).to_dict() == matched_stl_config(
            Config.fromfile(config), task).to_dict()
    with pytest.raises(SystemExit, match=r"--tasks \['depth'\]"):
        tool.main([config, '--tasks', 'depth', '--out-dir', str(out_dir)])
