"""Distributed runs on machines without an accelerator (gloo on the CPU).

MMEngine 0.10.7 cannot run a launcher on the CPU: its ``init_dist`` calls
``torch.cuda.set_device`` before creating the process group, and
``Runner.wrap_model`` gives DistributedDataParallel ``device_ids``, which
torch rejects for CPU modules. :func:`setup_cpu_distributed` initialises
the gloo process group itself (the Runner skips ``init_dist`` when a group
exists) and selects :class:`~mtl_pvt.engine.MMCPUDistributedDataParallel`.
With an accelerator it does nothing, so GPU runs are untouched.
"""
import datetime
import logging
import os
import subprocess
from typing import Optional

import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.device import get_device
from mmengine.dist import is_distributed
from mmengine.logging import print_log

CPU_DDP = 'mtl_pvt.MMCPUDistributedDataParallel'

# Launcher environment variables behind RANK, WORLD_SIZE and LOCAL_RANK,
# which the ``env://`` rendezvous and ``Runner.wrap_model`` read.
_RANK_ENV = dict(
    slurm=('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'),
    mpi=('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
         'OMPI_COMM_WORLD_LOCAL_RANK'))


def _export_rank_env(launcher: str, port: Optional[int] = None) -> None:
    """Export the ``env://`` variables that ``torchrun`` would have set."""
    if launcher not in ('pytorch', *_RANK_ENV):
        raise ValueError(f'Invalid launcher type: {launcher}')
    for name, source in zip(('RANK', 'WORLD_SIZE', 'LOCAL_RANK'),
                            _RANK_ENV.get(launcher, ())):
        os.environ[name] = os.environ[source]
    if launcher == 'slurm' and 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {nodes} | head -n1')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')


def init_cpu_dist(launcher: str,
                  backend: str = 'gloo',
                  port: Optional[int] = None,
                  timeout: Optional[float] = None,
                  **kwargs) -> None:
    """Initialise the default process group without touching CUDA.

    Args:
        launcher (str): 'pytorch', 'slurm' or 'mpi'.
        backend (str): A CPU backend of torch.distributed. Defaults to
            'gloo'.
        port (int, optional): Master port (slurm). Defaults to None, i.e.
            ``MASTER_PORT`` or 29500.
        timeout (float, optional): Timeout in seconds. Defaults to None.
        **kwargs: Other keys of ``env_cfg.dist_cfg``; ``init_backend`` is
            ignored, the rest go to ``init_process_group``.
    """
    _export_rank_env(launcher, port)
    kwargs.pop('init_backend', None)
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(backend=backend, **kwargs)


def cpu_model_wrapper_cfg(cfg: Config) -> Optional[dict]:
    """The ``model_wrapper_cfg`` that makes ``cfg`` wrap a CPU model.

    Keeps the user's wrapper arguments (``find_unused_parameters`` ...) and
    the Runner's defaults when the config has none. Custom wrappers other
    than ``MMDistributedDataParallel`` are left alone.

    Args:
        cfg (Config): The full config.

    Returns:
        dict, optional: The new ``model_wrapper_cfg``, or the config's own.
    """
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        # What Runner.wrap_model builds for a config without a wrapper.
        return dict(
            type=CPU_DDP,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_type = wrapper.get('type', 'MMDistributedDataParallel')
    if not isinstance(wrapper_type, str) or \
            wrapper_type.split('.')[-1] != 'MMDistributedDataParallel':
        print_log(
            f'model_wrapper_cfg type {wrapper_type!r} is kept for a CPU '
            'run; it must handle CPU modules itself.',
            logger='current',
            level=logging.WARNING)
        return wrapper
    return dict(wrapper, type=CPU_DDP)


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a launched run on a machine without an accelerator.

    Initialises a gloo process group, records the backend in
    ``cfg.env_cfg.dist_cfg`` and selects a CPU-capable model wrapper. Does
    nothing without a launcher, with an accelerator or when a process
    group already exists.

    Args:
        cfg (Config): The full config, with ``launcher`` set; modified in
            place.

    Returns:
        bool: Whether the CPU set-up was applied.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or get_device() != 'cpu' or is_distributed():
        return False
    env_cfg = cfg.get('env_cfg') or dict()
    dist_cfg = dict(env_cfg.get('dist_cfg') or dict(), backend='gloo')
    env_cfg['dist_cfg'] = dist_cfg
    cfg.env_cfg = env_cfg
    init_cpu_dist(launcher, **dist_cfg)
    cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(cfg)
    return True


def steps_may_skip_tasks(cfg: Config) -> bool:
    """Whether some training steps lack a task (alternating batches)."""
    batch_sampler = (cfg.get('train_dataloader') or {}).get('batch_sampler')
    return isinstance(batch_sampler, dict) and \
        batch_sampler.get('mode') == 'alternating'


def configure_unused_parameters(cfg: Config) -> bool:
    """Let DDP skip the parameters of tasks absent from a step.

    In alternating mode every rank runs the same task in a step, so the
    other tasks' decoders (and backbone copies) get no gradient anywhere.
    DDP then waits for their gradients (a hang, or an error in the next
    step) unless it searches for unused parameters; parameters unused on
    every rank keep ``grad=None``, so the optimizer leaves them untouched,
    as in a single-process run. The search costs a graph traversal per step
    (see benchmarks/ddp_find_unused.py); joint steps do not need it.

    Args:
        cfg (Config): The full config, with ``launcher`` set; modified in
            place.

    Returns:
        bool: Whether ``find_unused_parameters`` was switched on.
    """
    if cfg.get('launcher', 'none') == 'none' or \
            not steps_may_skip_tasks(cfg):
        return False
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is not None:
        if wrapper.get('find_unused_parameters', True) is False:
            raise ValueError(
                'model_wrapper_cfg.find_unused_parameters=False cannot train '
                "train_dataloader.batch_sampler.mode='alternating' under "
                'DDP: steps without a task leave its parameters unused')
        wrapper['find_unused_parameters'] = True
    cfg.find_unused_parameters = True
    print_log(
        'Alternating task batches under DDP: find_unused_parameters=True.',
        logger='current',
        level=logging.INFO)
    return True


def configure_task_by_task(cfg: Config) -> bool:
    """Use a model wrapper that lets one-task-at-a-time steps run.

    ``MultiTaskOptimWrapper(task_by_task=True)`` runs each task's forward
    and backward in turn inside ``MultiTaskModel.train_step``;
    ``MMCPUDistributedDataParallel`` (on an accelerator exactly mmengine's
    ``MMDistributedDataParallel``) hands the step to it.

    Returns:
        bool: Whether the wrapper type was set.
    """
    optim = cfg.get('optim_wrapper') or {}
    if cfg.get('launcher', 'none') == 'none' or \
            not optim.get('task_by_task', False):
        return False
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type=CPU_DDP,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        return True
    wrapper_type = str(wrapper.get('type', 'MMDistributedDataParallel'))
    if wrapper_type.split('.')[-1] not in ('MMDistributedDataParallel',
                                           CPU_DDP.split('.')[-1]):
        raise ValueError('optim_wrapper.task_by_task=True under DDP needs '
                         f'model_wrapper_cfg type {CPU_DDP!r} (or none), not '
                         f'{wrapper_type!r}')
    wrapper['type'] = CPU_DDP
    return True


def destroy_process_group() -> None:
    """Close the default process group, if any, before the process exits.

    Left to the interpreter's exit, gloo's threads can be torn down in the
    wrong order and abort the process ('terminate called without an active
    exception') after a run that succeeded.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
