"""Utilities: module registration and the config preflight check. Nothing
here imports mmengine's Runner, so ``import mtl_pvt`` (and the
``utils.typing_utils`` that the models read) stays light; the tools'
argument handling is ``mtl_pvt.engine.cli``, their distributed set-up
``mtl_pvt.engine.model_wrappers``."""
from .config_check import UnregisteredTypeError, check_config
from .setup_env import register_all_modules

__all__ = ['UnregisteredTypeError', 'check_config', 'register_all_modules']
