from .loss_weighting_hook import LossWeightingHook
from .multi_task_checkpoint_hook import MultiTaskCheckpointHook
from .preemption_hook import (PREEMPTED_EXIT_CODE, PREEMPTED_FILE,
                              PreemptionHook, TrainingPreempted)
from .random_state_hook import RandomStateHook
from .task_affinity_hook import TaskAffinityHook
from .task_monitor_hook import TaskMonitorHook

__all__ = [
    'LossWeightingHook', 'MultiTaskCheckpointHook', 'PREEMPTED_EXIT_CODE',
    'PREEMPTED_FILE', 'PreemptionHook', 'RandomStateHook', 'TaskAffinityHook',
    'TaskMonitorHook', 'TrainingPreempted'
]
