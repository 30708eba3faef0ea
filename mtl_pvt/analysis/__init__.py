from .complexity import (STANDARD_INPUT_SHAPES, TaskPath, complexity_report,
                         count_params, flatten_tensors, format_report,
                         path_flops, path_params, resolve_input_shapes,
                         shared_params, task_kind, task_models)

__all__ = [
    'STANDARD_INPUT_SHAPES', 'TaskPath', 'complexity_report', 'count_params',
    'flatten_tensors', 'format_report', 'path_flops', 'path_params',
    'resolve_input_shapes', 'shared_params', 'task_kind', 'task_models'
]
