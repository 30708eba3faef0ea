from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .mtl_models import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
