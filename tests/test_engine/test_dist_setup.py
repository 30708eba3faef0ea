"""The CPU distributed set-up of the tools' configs (gloo, CPU DDP)."""
import pytest
from mmengine.config import Config

from mtl_pvt.engine.model_wrappers import (CPU_DDP, configure_task_by_task,
                                           configure_unused_parameters,
                                           cpu_model_wrapper_cfg,
                                           setup_cpu_distributed)


def test_cpu_model_wrapper_cfg():
    cfg = Config(dict(find_unused_parameters=True))
    assert cpu_model_wrapper_cfg(cfg) == dict(
        type=CPU_DDP, broadcast_buffers=False, find_unused_parameters=True)
    cfg.model_wrapper_cfg = dict(
        type='MMDistributedDataParallel',
        find_unused_parameters=True,
        detect_anomalous_params=True)
    assert cpu_model_wrapper_cfg(cfg) == dict(
        type=CPU_DDP,
        find_unused_parameters=True,
        detect_anomalous_params=True)
    cfg.model_wrapper_cfg = dict(type='MMFullyShardedDataParallel')
    assert cpu_model_wrapper_cfg(cfg) == cfg.model_wrapper_cfg


def test_setup_cpu_distributed_without_launcher(tiny_cls_config):
    cfg = Config.fromfile(tiny_cls_config)
    cfg.launcher = 'none'
    assert not setup_cpu_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'


def alternating_cfg(launcher='pytorch', **kwargs):
    return Config(
        dict(
            launcher=launcher,
            train_dataloader=dict(batch_sampler=dict(mode='alternating')),
            **kwargs))


def test_alternating_steps_search_unused_parameters():
    cfg = alternating_cfg()
    assert configure_unused_parameters(cfg)
    assert cfg.find_unused_parameters is True
    cfg = alternating_cfg(model_wrapper_cfg=dict(type=CPU_DDP))
    assert configure_unused_parameters(cfg)
    assert cfg.model_wrapper_cfg.find_unused_parameters is True
    cfg = alternating_cfg(
        model_wrapper_cfg=dict(type=CPU_DDP, find_unused_parameters=False))
    with pytest.raises(ValueError, match='find_unused_parameters=False'):
        configure_unused_parameters(cfg)
    joint = Config(
        dict(
            launcher='pytorch',
            train_dataloader=dict(batch_sampler=dict(mode='joint'))))
    assert not configure_unused_parameters(joint)
    assert not configure_unused_parameters(alternating_cfg(launcher='none'))


def test_task_by_task_steps_select_the_cpu_ddp_wrapper():
    optim = dict(type='MultiTaskOptimWrapper', task_by_task=True)
    cfg = Config(dict(launcher='pytorch', optim_wrapper=optim))
    assert configure_task_by_task(cfg)
    assert cfg.model_wrapper_cfg == dict(
        type=CPU_DDP, broadcast_buffers=False, find_unused_parameters=False)
    cfg = Config(
        dict(
            launcher='pytorch',
            optim_wrapper=optim,
            model_wrapper_cfg=dict(type='MMDistributedDataParallel')))
    assert configure_task_by_task(cfg)
    assert cfg.model_wrapper_cfg.type == CPU_DDP
    cfg.model_wrapper_cfg = dict(type='MMFullyShardedDataParallel')
    with pytest.raises(ValueError, match='task_by_task=True under DDP'):
        configure_task_by_task(cfg)
    assert not configure_task_by_task(
        Config(dict(launcher='none', optim_wrapper=optim)))
