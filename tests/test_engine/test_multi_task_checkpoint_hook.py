"""MultiTaskCheckpointHook: atomic checkpoints that a crash at any step of
a save leaves resumable, no non-finite checkpoint, a save_best that
survives a skipped metric, and a report of how a checkpoint fits."""
import itertools
import logging
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mtl_pvt.engine.hooks.multi_task_checkpoint_hook as hook_module
from mtl_pvt.converters.load_check import CheckpointMismatchError
from mtl_pvt.engine import allow_mmengine_checkpoint_globals
from mtl_pvt.engine.hooks import MultiTaskCheckpointHook

MAX_ITERS = 4
_RUN_IDS = itertools.count()


class ToyDataset(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return dict(
            inputs=torch.tensor([idx, 1.0]),
            data_samples=torch.tensor([idx % 2], dtype=torch.float32))


class ToyModel(BaseModel):
    """A linear regressor with a ``backbone``."""

    def __init__(self, width=2):
        super().__init__()
        self.backbone = nn.Linear(2, width)
        self.head = nn.Linear(width, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        outputs = self.head(self.backbone(inputs))
        if mode == 'loss':
            return dict(loss=((outputs - data_samples)**2).mean())
        return outputs


def build_runner(work_dir, resume=False, **checkpoint):
    checkpoint = dict(
        type='MultiTaskCheckpointHook',
        interval=1,
        by_epoch=False,
        max_keep_ckpts=1,
        **checkpoint)
    torch.manual_seed(0)  # the same initial weights in every run
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=MAX_ITERS),
        default_hooks=dict(checkpoint=checkpoint),
        default_scope='mtl_pvt',
        resume=resume,
        randomness=dict(seed=0),
        log_level='WARNING',
        experiment_name=f'toy_{next(_RUN_IDS)}')


def weights(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def last_checkpoint(work_dir):
    return (work_dir / 'last_checkpoint').read_text()


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
    allow_mmengine_checkpoint_globals()
    runner = build_runner(tmp_path_factory.mktemp('straight'))
    runner.train()
    return weights(runner)


class Crash(Exception):
    """Stands in for a kill at one step of a save."""


def crash_at_call(monkeypatch, name, call):
    """Make ``name`` (of the hook's module, else of the hook) raise on its
    ``call``-th call (an int) or on its call with the argument ``call``."""
    owner = hook_module if hasattr(hook_module, name) \
        else MultiTaskCheckpointHook
    original = getattr(owner, name)
    calls = itertools.count(1)

    def crashing(*args, **kwargs):
        if next(calls) == call or call in map(str, args):
            raise Crash(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, crashing)


@pytest.mark.parametrize(
    'step,call,last,left',
    [
        # writing iter_3.pth.tmp: last_checkpoint and iter_2.pth untouched
        ('_fsync', 'iter_3.pth.tmp', 'iter_2.pth',
         ['iter_2.pth', 'iter_3.pth.tmp']),
        # iter_3.pth renamed, last_checkpoint not yet replaced
        ('write_text_atomic', 3, 'iter_2.pth', ['iter_2.pth', 'iter_3.pth']),
        # last_checkpoint replaced, iter_2.pth not yet removed (the 1st call
        # is before_train's clean-up)
        ('_remove', 4, 'iter_3.pth', ['iter_2.pth', 'iter_3.pth']),
    ])
def test_a_crash_at_any_step_of_a_save_leaves_a_resumable_work_dir(
        tmp_path, monkeypatch, straight, step, call, last, left):
    if isinstance(call, str):
        call = str(tmp_path / call)
    crash_at_call(monkeypatch, step, call)
    with pytest.raises(Crash):
        build_runner(tmp_path).train()
    monkeypatch.undo()
    assert last_checkpoint(tmp_path) == str(tmp_path / last)
    assert sorted(p for p in os.listdir(tmp_path) if '.pth' in p) == left

    resumed = build_runner(tmp_path, resume=True)
    resumed.train()
    # the leftovers are gone, the run ends as an uninterrupted one
    assert sorted(p for p in os.listdir(tmp_path) if '.pth' in p) == \
        ['iter_4.pth']
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]
    for key, value in straight.items():
        torch.testing.assert_close(weights(resumed)[key], value)


def test_old_checkpoints_are_removed_after_the_new_one_is_complete(
        tmp_path, monkeypatch):
    events = []
    replace, remove = os.replace, MultiTaskCheckpointHook._remove

    def logged_replace(src, dst):
        events.append(('replace', osp.basename(dst)))
        replace(src, dst)

    def logged_remove(self, paths):
        events.append(('remove', [osp.basename(p) for p in paths]))
        remove(self, paths)

    monkeypatch.setattr(hook_module.os, 'replace', logged_replace)
    monkeypatch.setattr(MultiTaskCheckpointHook, '_remove', logged_remove)
    build_runner(tmp_path).train()
    i = events.index(('replace', 'iter_2.pth'))
    assert events[i:i + 3] == [('replace', 'iter_2.pth'),
                               ('replace', 'last_checkpoint'),
                               ('remove', ['iter_1.pth'])]


def test_no_checkpoint_with_nonfinite_weights(tmp_path):
    runner = build_runner(tmp_path)
    runner.train()
    with torch.no_grad():
        runner.model.head.weight.fill_(float('nan'))
    with pytest.raises(FloatingPointError) as error:
        runner.save_checkpoint(str(tmp_path), 'iter_5.pth')
    assert str(error.value) == (
        'not saving a checkpoint at iteration 5: 1 of 4 tensors are not '
        'finite (head (1)); the last checkpoint written stays: '
        f'{tmp_path / "iter_4.pth"}')
    assert not (tmp_path / 'iter_5.pth').exists()


def stub_runner(tmp_path, delta_m=True):
    name = f'stub_{next(_RUN_IDS)}'
    return SimpleNamespace(
        iter=3,
        epoch=0,
        work_dir=str(tmp_path),
        message_hub=MessageHub.get_instance(name),
        logger=logging.getLogger(name),  # caplog sees it
        val_loop=SimpleNamespace(
            dataloaders=dict(cls=None, det=None),
            delta_m=dict(cls={}, det={}) if delta_m else {}))


def test_save_best_keeps_the_best_when_the_metric_is_skipped(tmp_path, caplog):
    hook = MultiTaskCheckpointHook(
        by_epoch=False,
        save_best=['mtl/delta_m', 'det/coco/bbox_mAP'],
        rule='greater')
    runner = stub_runner(tmp_path)
    hook.out_dir = str(tmp_path)
    hook.before_train(runner)
    metrics = {'cls/accuracy/top1': 50.0}  # det returned nothing
    with caplog.at_level(logging.WARNING):
        hook._save_best_checkpoint(runner, metrics)
    assert "save_best: no 'mtl/delta_m' at iter 3 (delta-m was skipped: " \
        "task(s) ['det'] returned no metrics); no best checkpoint yet; " \
        'training goes on' in caplog.text
    assert "no 'det/coco/bbox_mAP' at iter 3 (task 'det' returned no " \
        'metrics)' in caplog.text
    # a non-finite value is skipped the same way
    metrics = {'mtl/delta_m': float('nan'), 'det/coco/bbox_mAP': None}
    hook._save_best_checkpoint(runner, metrics)
    assert "no 'mtl/delta_m' at iter 3 (it is nan)" in caplog.text
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('key,delta_m', [('mtl/delta_m', False),
                                         ('cls/accuracy/top5', True)])
def test_save_best_that_no_validation_returns_is_an_error(
        tmp_path, key, delta_m):
    hook = MultiTaskCheckpointHook(
        by_epoch=False, save_best=key, rule='greater')
    runner = stub_runner(tmp_path, delta_m)
    hook.out_dir = str(tmp_path)
    hook.before_train(runner)
    with pytest.raises(KeyError, match=f'save_best={key!r} is not among'):
        hook._save_best_checkpoint(runner, {'cls/accuracy/top1': 50.0})


def test_loaded_checkpoint_that_does_not_fit(tmp_path):
    runner = build_runner(tmp_path)
    other = ToyModel(width=3).state_dict()
    torch.save(dict(state_dict=other), tmp_path / 'other.pth')
    with pytest.raises(CheckpointMismatchError) as error:
        runner.load_checkpoint(str(tmp_path / 'other.pth'))
    assert str(error.value).startswith(
        'the loaded checkpoint: 1 of 4 model tensors fit\n'
        '  3 tensors of another shape (checkpoint vs model): '
        'backbone.weight (3, 2) vs model (2, 2), ')
    assert 'load_from_partial=True' in str(error.value)
    # explicitly partial: what fits is loaded, the rest is reported
    runner.cfg.load_from_partial = True
    runner.load_checkpoint(str(tmp_path / 'other.pth'))
