from .checkpoint import (allow_mmengine_checkpoint_globals,
                         mmengine_checkpoint_globals)
from .hooks import *  # noqa: F401,F403
from .model_wrappers import MMCPUDistributedDataParallel
from .optimizers import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403

# Any process that builds mtl_pvt modules may resume a Runner checkpoint.
allow_mmengine_checkpoint_globals()

__all__ = [
    'MMCPUDistributedDataParallel', 'allow_mmengine_checkpoint_globals',
    'mmengine_checkpoint_globals'
]
