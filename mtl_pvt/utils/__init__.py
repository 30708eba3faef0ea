"""Utilities. The tools' argument handling (``cli``) and distributed
set-up (``dist``) import mmengine's Runner; they are loaded on first use
(PEP 562), so ``import mtl_pvt`` (and the ``utils.typing_utils`` that the
models read) does not import the Runner. ``mtl_pvt.models`` still brings it
in through mmcv: ``mmcv.cnn`` imports ``mmengine.runner.load_checkpoint``."""
from importlib import import_module

from .config_check import UnregisteredTypeError, check_config
from .setup_env import register_all_modules

_CLI = ('add_common_args', 'add_dump_results', 'apply_test_args',
        'apply_train_args', 'build_runner', 'enable_visualization',
        'export_local_rank', 'load_config')
_DIST = ('configure_task_by_task', 'configure_unused_parameters',
         'destroy_process_group', 'setup_cpu_distributed')
_LAZY = {**dict.fromkeys(_CLI, '.cli'), **dict.fromkeys(_DIST, '.dist')}

__all__ = [
    'UnregisteredTypeError', 'add_common_args', 'add_dump_results',
    'apply_test_args', 'apply_train_args', 'build_runner', 'check_config',
    'configure_task_by_task', 'configure_unused_parameters',
    'destroy_process_group', 'enable_visualization', 'export_local_rank',
    'load_config', 'register_all_modules', 'setup_cpu_distributed'
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
