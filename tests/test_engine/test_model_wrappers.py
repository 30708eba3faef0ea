"""MMCPUDistributedDataParallel wraps CPU modules given device_ids."""
import socket

import pytest
import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

from mtl_pvt.engine import MMCPUDistributedDataParallel


@pytest.fixture
def gloo_group():
    """A one-process gloo group."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    yield
    torch_dist.destroy_process_group()


def test_cpu_module_with_device_ids(gloo_group):
    model = nn.Linear(2, 1)
    # What Runner.wrap_model passes; torch refuses it for a CPU module.
    with pytest.raises(ValueError, match='device_ids'):
        MMDistributedDataParallel(module=model, device_ids=[0])
    wrapper = MODEL_WRAPPERS.build(
        dict(
            type='mtl_pvt.MMCPUDistributedDataParallel',
            find_unused_parameters=True),
        default_args=dict(module=model, device_ids=[0]))
    assert isinstance(wrapper, MMCPUDistributedDataParallel)
    assert wrapper.device_ids is None
    assert wrapper.find_unused_parameters
    wrapper(torch.ones(3, 2)).sum().backward()
    assert model.weight.grad is not None
