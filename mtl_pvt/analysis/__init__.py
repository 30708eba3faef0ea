from .complexity import (TaskPath, complexity_report, count_params,
                         flatten_tensors, format_report, path_flops,
                         path_params, resolve_input_shapes, shared_params,
                         task_kinds, task_models)

__all__ = [
    'TaskPath', 'complexity_report', 'count_params', 'flatten_tensors',
    'format_report', 'path_flops', 'path_params', 'resolve_input_shapes',
    'shared_params', 'task_kinds', 'task_models'
]
