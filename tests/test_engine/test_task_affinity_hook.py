"""TaskAffinityHook: training is unchanged by it; what it logs."""
import json
import logging
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import OptimWrapper

from mtl_pvt.analysis.affinity import load_affinity, mean_affinity
from mtl_pvt.engine import TaskAffinityHook
from mtl_pvt.testing.tiny_mtl import make_mtl_batch, make_mtl_model

TASKS = ('a', 'b', 'seg')


class Visualizer:

    def __init__(self):
        self.scalars = []

    def add_scalars(self, scalars, step):
        self.scalars.append((step, scalars))


def train(hook, log_dir, iters=3, **backbone):
    """``iters`` SGD-momentum steps of the tiny model, with stochastic
    depth on, each step preceded by the hook as the Runner calls it."""
    model = make_mtl_model(TASKS, **backbone)
    drop_paths = [m for m in model.modules() if type(m).__name__ == 'DropPath']
    assert drop_paths
    for module in drop_paths:
        module.drop_prob = 0.1
    wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        clip_grad=dict(max_norm=1.))
    runner = SimpleNamespace(
        model=model,
        optim_wrapper=wrapper,
        iter=0,
        visualizer=Visualizer(),
        logger=logging.getLogger('affinity_hook_test'),
        log_dir=str(log_dir))
    torch.manual_seed(7)
    if hook is not None:
        hook.before_train(runner)
    for i in range(iters):
        batch = make_mtl_batch(TASKS, per_task=1, seed=i, size=32)
        runner.iter = i
        if hook is not None:
            hook.before_train_iter(runner, i, batch)
        model.train_step(batch, wrapper)
    return runner


def test_training_is_unchanged_by_the_hook(tmp_path):
    plain = train(None, tmp_path / 'plain')
    hook = TaskAffinityHook(interval=2)
    measured = train(hook, tmp_path)
    state = plain.model.state_dict()
    for key, value in measured.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert str(measured.optim_wrapper.state_dict()) == str(
        plain.optim_wrapper.state_dict())
    for p, q in zip(plain.model.parameters(), measured.model.parameters()):
        assert (p.grad is None) == (q.grad is None)
        assert p.grad is None or torch.equal(p.grad, q.grad)
    # iterations 0 and 2 measured, into the log dir and the visualizer
    data = load_affinity(str(tmp_path))
    assert [r['step'] for r in data['records']] == [0, 2]
    assert data['tasks'] == list(TASKS)
    assert data['stage_groups'] == [[list(TASKS)]] * 4
    assert data['max_norm'] == 1.  # the wrapper's clip_grad
    assert [step for step, _ in measured.visualizer.scalars] == [0, 2]
    scalars = measured.visualizer.scalars[0][1]
    assert scalars['affinity/stage1/a->b'] == \
        data['records'][0]['affinity']['stage1']['a']['b']
    assert 'grad_cos/stage3/a-seg' in scalars
    mean = mean_affinity(data)
    assert mean['num_records'] == 2
    z = [r['affinity']['backbone']['seg']['a'] for r in data['records']]
    assert mean['affinity']['backbone']['seg']['a'] == pytest.approx(
        sum(z) / 2)


def test_random_stream_of_training_is_kept(tmp_path):
    train(None, tmp_path / 'plain')
    after_plain = torch.get_rng_state()
    train(TaskAffinityHook(interval=1), tmp_path)
    assert torch.equal(torch.get_rng_state(), after_plain)


def test_lr_from_the_optimizer_or_given(tmp_path):
    runner = train(TaskAffinityHook(interval=1), tmp_path, iters=1)
    data = json.load(open(osp.join(tmp_path, 'affinity.json')))
    assert set(data['records'][0]['lr'].values()) == {0.05}
    assert runner is not None
    train(
        TaskAffinityHook(interval=1, lr=0.2, max_norm=None), tmp_path, iters=1)
    data = json.load(open(osp.join(tmp_path, 'affinity.json')))
    assert set(data['records'][0]['lr'].values()) == {0.2}
    assert data['max_norm'] is None


def test_nothing_shared_disables_the_hook(tmp_path, caplog):
    hook = TaskAffinityHook(interval=1)
    with caplog.at_level(logging.WARNING, 'affinity_hook_test'):
        train(hook, tmp_path, iters=1, share_stages=0)
    assert 'no backbone stage is shared' in caplog.text
    assert not osp.exists(osp.join(tmp_path, 'affinity.json'))


@pytest.mark.parametrize('kwargs, match', [
    (dict(interval=0), 'interval'),
    (dict(lr=0.), 'lr'),
    (dict(max_norm=-1), 'max_norm'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TaskAffinityHook(**kwargs)
