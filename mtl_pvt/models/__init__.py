from .necks import *  # noqa: F401,F403
