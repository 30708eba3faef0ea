from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .loss_weighting import *  # noqa: F401,F403
from .mtl_models import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .task_parameters import task_parameters  # noqa: F401
from .task_utils import *  # noqa: F401,F403
