"""Model wrappers and their distributed set-up: the DDP wrapper that also
wraps CPU modules, and the set-up that lets the tools launch it on
machines without an accelerator (gloo)."""
from .ddp import MMCPUDistributedDataParallel
from .dist_setup import (CPU_DDP, configure_task_by_task,
                         configure_unused_parameters, cpu_model_wrapper_cfg,
                         destroy_process_group, init_cpu_dist,
                         setup_cpu_distributed, steps_may_skip_tasks)

__all__ = [
    'CPU_DDP', 'MMCPUDistributedDataParallel', 'configure_task_by_task',
    'configure_unused_parameters', 'cpu_model_wrapper_cfg',
    'destroy_process_group', 'init_cpu_dist', 'setup_cpu_distributed',
    'steps_may_skip_tasks'
]
