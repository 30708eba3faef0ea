from .random_state_hook import RandomStateHook
from .task_monitor_hook import TaskMonitorHook

__all__ = ['RandomStateHook', 'TaskMonitorHook']
