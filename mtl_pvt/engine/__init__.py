from .checkpoint import (allow_mmengine_checkpoint_globals,
                         mmengine_checkpoint_globals)
from .model_wrappers import MMCPUDistributedDataParallel

# Any process that builds mtl_pvt modules may resume a Runner checkpoint.
allow_mmengine_checkpoint_globals()

__all__ = [
    'MMCPUDistributedDataParallel', 'allow_mmengine_checkpoint_globals',
    'mmengine_checkpoint_globals'
]
