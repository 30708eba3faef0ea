from .backbones import *  # noqa: F401,F403
from .builder import build_model_from_config  # noqa: F401
from .data_preprocessors import *  # noqa: F401,F403
from .loss_weighting import *  # noqa: F401,F403
from .mtl_models import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .task_utils import *  # noqa: F401,F403
