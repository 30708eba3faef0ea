"""mtl_pvt: multi-task learning on a shared PVT v2 backbone for OpenMMLab."""
from .utils import register_all_modules
from .version import __version__

__all__ = ['__version__', 'register_all_modules']
