"""TaskMonitorHook: per-task sample counts and losses in the message hub."""
import itertools
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import LoggerHook, RuntimeInfoHook
from mmengine.logging import MessageHub
from mmengine.runner import Runner, get_priority

from mtl_pvt import register_all_modules
from mtl_pvt.demo import make_demo_data
from mtl_pvt.engine import TaskMonitorHook
from mtl_pvt.testing import task_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASKS = ['cls', 'det', 'seg']
_RUN_IDS = itertools.count()


def fake_runner(tasks=TASKS):
    """What the hook reads of a runner: the model's tasks, a message hub."""
    hub = MessageHub.get_instance(f'task_monitor_{next(_RUN_IDS)}')
    return SimpleNamespace(
        model=SimpleNamespace(task_names=tasks), message_hub=hub)


def log_vars(**losses):
    """Parsed ``log_vars`` of the model; ``det__loss_cls`` -> 'det.loss_cls'
    and 'loss', the total."""
    outputs = {
        k.replace('__', '.'): torch.tensor(v)
        for k, v in losses.items()
    }
    outputs['loss'] = sum(v for k, v in outputs.items() if 'loss' in k)
    return outputs


def history(hub, key):
    """Every value logged under ``key``."""
    return hub.get_scalar(key).data[0].tolist()


def test_counts_and_losses_per_task():
    runner = fake_runner()
    hook = TaskMonitorHook()
    hook.before_train(runner)
    # a joint step: every task
    outputs = log_vars(
        cls__loss=1.,
        det__loss_cls=2.,
        det__loss_bbox=3.,
        seg__decode__loss_ce=4.,
        seg__decode__acc_seg=50.)  # not a loss
    batch = task_batch(['cls', 'det', 'seg', 'cls'])
    hook.after_train_iter(runner, 0, batch, outputs)
    # an alternating step: det only
    hook.after_train_iter(runner, 1, task_batch(['det', 'det']),
                          log_vars(det__loss_cls=.5, det__loss_bbox=.25))

    hub = runner.message_hub
    counts = {t: hub.get_info(f'train/{t}.samples_seen') for t in TASKS}
    assert counts == dict(cls=2, det=3, seg=1)
    assert history(hub, 'train/det.samples_seen') == [1, 3]
    assert history(hub, 'train/det.loss_sum') == [5., .75]
    # absent from the second step: nothing logged, not a loss of 0
    assert history(hub, 'train/cls.samples_seen') == [2]
    assert history(hub, 'train/cls.loss_sum') == [1.]
    assert history(hub, 'train/seg.loss_sum') == [4.]


def test_updates_count_the_steps_with_samples():
    runner = fake_runner()
    hook = TaskMonitorHook()
    hook.before_train(runner)
    # joint, det only, cls and seg, an empty batch
    steps = [TASKS, ['det', 'det'], ['seg', 'cls'], []]
    for index, tasks in enumerate(steps):
        hook.after_train_iter(runner, index, task_batch(tasks), {})
    hub = runner.message_hub
    updates = {t: hub.get_info(f'train/{t}.updates') for t in TASKS}
    assert updates == dict(cls=2, det=2, seg=2)
    assert history(hub, 'train/det.updates') == [1, 2]
    assert history(hub, 'train/cls.updates') == [1, 2]
    # 2 det samples in the second step count as one update
    assert history(hub, 'train/det.samples_seen') == [1, 3]


def test_needs_a_multi_task_model():
    runner = fake_runner(tasks=None)
    message = 'TaskMonitorHook needs a model with tasks'
    with pytest.raises(TypeError, match=message):
        TaskMonitorHook().before_train(runner)


def test_logged_before_the_logger_hook():
    priority = get_priority(TaskMonitorHook.priority)
    assert get_priority(RuntimeInfoHook.priority) < priority
    assert priority < get_priority(LoggerHook.priority)


def train_runner(work_dir, data_root, max_iters, **kwargs):
    """A one-task MultiTaskModel (the demo classifier) trained on the demo
    classification set, logging every iteration into scalars.json."""
    register_all_modules()
    cls_model = Config.fromfile(
        osp.join(REPO, 'configs/_base_/models/pvtv2_b0_demo_cls.py'))
    data = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/demo_imagenet.py'))
    loader = data.cls_train_dataloader
    loader.update(batch_size=4, num_workers=0, persistent_workers=False)
    loader.dataset.data_root = data_root
    return Runner(
        model=dict(
            type='MultiTaskModel',
            backbone=dict(
                type='SharedPVTv2',
                arch=dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
                share_stages=4),
            tasks=dict(cls=cls_model.cls_model)),
        work_dir=str(work_dir),
        train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        custom_hooks=[dict(type='TaskMonitorHook')],
        log_processor=dict(by_epoch=False),
        visualizer=dict(
            type='Visualizer', vis_backends=[dict(type='LocalVisBackend')]),
        default_scope='mtl_pvt',
        randomness=dict(seed=0),
        experiment_name=f'task_monitor_{next(_RUN_IDS)}',
        log_level='WARNING',
        **kwargs)


def logged(runner, key):
    """``key`` of each line of the run's scalars.json, by iteration."""
    path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    return {line['iter']: line[key] for line in lines}


def test_scalars_json_and_resume(tmp_path):
    root = str(tmp_path / 'demo')
    make_demo_data(
        root,
        cls_train_per_class=2,
        cls_val_per_class=0,
        det_train=0,
        det_val=0,
        seg_train=0,
        seg_val=0)
    data_root = osp.join(root, 'imagenet')
    runner = train_runner(tmp_path / 'run', data_root, max_iters=2)
    runner.train()
    assert logged(runner, 'cls.samples_seen') == {1: 4, 2: 8}
    assert logged(runner, 'cls.updates') == {1: 1, 2: 2}
    # one task, one loss key: the sum is the model's 'cls.loss'
    assert logged(runner, 'cls.loss_sum') == logged(runner, 'cls.loss')

    resumed = train_runner(
        tmp_path / 'resumed',
        data_root,
        max_iters=4,
        resume=True,
        load_from=str(tmp_path / 'run' / 'iter_2.pth'))
    resumed.train()
    assert logged(resumed, 'cls.samples_seen') == {3: 12, 4: 16}
    assert logged(resumed, 'cls.updates') == {3: 3, 4: 4}
