"""Runner checkpoints load with torch.load's weights-only default."""
import itertools
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mtl_pvt.engine import (allow_mmengine_checkpoint_globals,
                            mmengine_checkpoint_globals)
from mtl_pvt.engine.checkpoint import history_buffer_statistic


class ToyDataset(Dataset):
    """Eight 2-d points with a regression target."""

    metainfo = dict(classes=('a', 'b'), palette=[(0, 0, 0), (9, 9, 9)])

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return dict(
            inputs=torch.tensor([idx, 1.0]),
            data_samples=torch.tensor([idx % 2], dtype=torch.float32))


class ToyModel(BaseModel):
    """A linear regressor."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        outputs = self.fc(inputs)
        if mode == 'loss':
            return dict(loss=((outputs - data_samples)**2).mean())
        return outputs


_RUN_IDS = itertools.count()


class Untrusted:
    """A class nobody allow-listed."""


def build_runner(work_dir, max_iters, **kwargs):
    kwargs.setdefault('randomness', dict(seed=0))
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[2], by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=max_iters, by_epoch=False)),
        log_level='WARNING',
        # Runners named by their (1 s) timestamp would share a logger.
        experiment_name=f'toy_{next(_RUN_IDS)}',
        **kwargs)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """``(checkpoint path, state dict)`` of 3 training iterations."""
    allow_mmengine_checkpoint_globals()
    work_dir = tmp_path_factory.mktemp('toy')
    runner = build_runner(work_dir, max_iters=3)
    # A numpy scalar in the runtime info, as LoggerHook's ETA is.
    runner.message_hub.update_info('np_scalar', np.int32(7), resumed=True)
    runner.train()
    # On the CPU, as checkpoints store it (the model may be on a GPU).
    state = {
        key: value.cpu().clone()
        for key, value in runner.model.state_dict().items()
    }
    return str(work_dir / 'iter_3.pth'), state


def test_weights_only_load_of_runner_checkpoint(trained):
    path, state = trained
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    checkpoint = torch.load(path)  # weights_only=True by default
    assert checkpoint['meta']['iter'] == 3
    assert checkpoint['meta']['dataset_meta']['classes'] == ('a', 'b')
    hub = checkpoint['message_hub']
    assert hub['runtime_info']['np_scalar'] == 7
    loss = hub['log_scalars']['train/loss']
    assert len(loss.data[0]) == 3
    assert loss.statistics('mean') == pytest.approx(loss.data[0].mean())
    for key, value in state.items():
        assert torch.equal(checkpoint['state_dict'][key], value)


class Probe(Hook):
    """Records the iterations run and the weights before the first one."""

    def __init__(self):
        self.iters = []
        self.first_state = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.first_state is None:
            self.first_state = {
                key: value.cpu().clone()
                for key, value in runner.model.state_dict().items()
            }
        self.iters.append(runner.iter)


def test_resume(trained, tmp_path):
    path, state = trained
    probe = Probe()
    # Another seed, so that a fresh start would not match the checkpoint.
    runner = build_runner(
        tmp_path,
        max_iters=4,
        resume=True,
        load_from=path,
        custom_hooks=[probe],
        randomness=dict(seed=1))
    runner.train()
    assert probe.iters == [3]
    assert runner.iter == 4
    for key, value in probe.first_state.items():
        assert torch.equal(value, state[key])
    hub = runner.message_hub
    assert hub.get_info('np_scalar') == 7
    assert len(hub.get_scalar('train/loss').data[0]) == 4


def test_load_from(trained, tmp_path):
    path, state = trained
    runner = build_runner(tmp_path, max_iters=3, load_from=path)
    runner.load_or_resume()
    assert runner.iter == 0
    for key, value in runner.model.state_dict().items():
        assert torch.equal(value.cpu(), state[key])


def test_safe_loading_stays_on(tmp_path):
    allow_mmengine_checkpoint_globals()
    path = tmp_path / 'untrusted.pth'
    torch.save(dict(state_dict={}, payload=Untrusted()), path)
    with pytest.raises(pickle.UnpicklingError, match='Untrusted'):
        torch.load(path)
    # getattr stands in only for the HistoryBuffer statistics.
    torch.save(dict(method=np.ndarray.tofile), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    with pytest.raises(pickle.UnpicklingError, match='only the HistoryBuf'):
        history_buffer_statistic(np.ndarray, 'tofile')


def test_allow_list_is_idempotent():
    allow_mmengine_checkpoint_globals()
    before = len(torch.serialization.get_safe_globals())
    allow_mmengine_checkpoint_globals()
    assert len(torch.serialization.get_safe_globals()) == before
    assert set(mmengine_checkpoint_globals()) <= set(
        torch.serialization.get_safe_globals())
