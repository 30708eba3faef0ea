from .complexity import (TaskPath, complexity_report, count_params,
                         flatten_tensors, format_report, path_flops,
                         path_params, resolve_input_shapes, shared_params,
                         task_kinds, task_models)
from .memory import (SavedActivations, joint_step_memory, state_bytes,
                     step_activation_bytes)

__all__ = [
    'TaskPath', 'complexity_report', 'count_params', 'flatten_tensors',
    'format_report', 'path_flops', 'path_params', 'resolve_input_shapes',
    'shared_params', 'task_kinds', 'task_models', 'SavedActivations',
    'state_bytes', 'step_activation_bytes', 'joint_step_memory'
]
