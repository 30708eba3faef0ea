"""One config, one run, whichever way it is started.

The demo full-share config trained 3 iterations (shorter than its
20-iteration warm-up, so its schedules must be fitted) through
``tools/train.py``, through mmengine's plain ``Runner.from_cfg(cfg)`` in a
script, and through ``RUNNERS.build(cfg)`` (what the OpenMMLab libraries'
tools and ``mim train`` do with a config's ``runner_type``): the same
weights, bit for bit. mim is not in this environment.
"""
import os.path as osp

import pytest
import torch

from mtl_pvt.testing.demo_runs import (demo_config, load_weights,
                                       make_tiny_demo_data, tiny_options)

SCRIPT = '''
import argparse
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mtl_pvt.utils import register_all_modules
parser = argparse.ArgumentParser()
parser.add_argument('how')
parser.add_argument('config')
parser.add_argument('--work-dir')
parser.add_argument('--cfg-options', nargs='+', action=DictAction)
args = parser.parse_args()
register_all_modules(init_default_scope=False)
cfg = Config.fromfile(args.config)
cfg.merge_from_dict(args.cfg_options)
cfg.work_dir = args.work_dir
if args.how == 'plain':
    runner = Runner.from_cfg(cfg)
else:
    runner = RUNNERS.build(cfg)
print('runner:', type(runner).__name__)
runner.train()
'''


@pytest.fixture(scope='module')
def tiny_demo_root(tmp_path_factory):
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('entry_demo')))


def test_train_tool_plain_runner_and_registry_give_one_run(
        tmp_path, tiny_demo_root, train_fork_server):
    config = demo_config()
    options = tiny_options(max_iters=3)
    script = tmp_path / 'entry.py'
    script.write_text(SCRIPT)
    weights, logs = {}, {}
    for how in ('tool', 'plain', 'registry'):
        work_dir = tmp_path / how
        log = tmp_path / f'{how}.log'
        if how == 'tool':
            code, logs[how] = train_fork_server.train(
                config,
                str(work_dir),
                options,
                cwd=tiny_demo_root,
                log=str(log))
        else:
            code = train_fork_server.run([
                'python',
                str(script), how, config, '--work-dir',
                str(work_dir), '--cfg-options', *options
            ], tiny_demo_root, str(log))
            logs[how] = log.read_text()
        assert code == 0, logs[how][-3000:]
        weights[how] = load_weights(osp.join(work_dir, 'iter_3.pth'))
    assert 'runner: Runner' in logs['plain']
    assert 'runner: MultiTaskRunner' in logs['registry']
    # the schedules were fitted on every path (20-iteration warm-up, 3 its)
    for how in weights:
        assert 'max_iters=3 is shorter than the param_scheduler' in \
            logs[how] or _in_work_dir(tmp_path / how), how
    for how in ('plain', 'registry'):
        assert weights[how].keys() == weights['tool'].keys()
        for name, value in weights['tool'].items():
            assert torch.equal(weights[how][name], value), (how, name)


def _in_work_dir(work_dir):
    """The fitting note, in the run's own log file."""
    for log in work_dir.glob('*/*.log'):
        if 'is shorter than the param_scheduler' in log.read_text():
            return True
    return False
