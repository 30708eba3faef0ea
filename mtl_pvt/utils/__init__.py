from .cli import (add_common_args, add_dump_results, apply_test_args,
                  apply_train_args, build_runner, enable_visualization,
                  export_local_rank, load_config)
from .config_check import UnregisteredTypeError, check_config
from .dist import (configure_task_by_task, configure_unused_parameters,
                   destroy_process_group, setup_cpu_distributed)
from .setup_env import register_all_modules

__all__ = [
    'UnregisteredTypeError', 'add_common_args', 'add_dump_results',
    'apply_test_args', 'apply_train_args', 'build_runner', 'check_config',
    'configure_task_by_task', 'configure_unused_parameters',
    'destroy_process_group', 'enable_visualization', 'export_local_rank',
    'load_config', 'register_all_modules', 'setup_cpu_distributed'
]
