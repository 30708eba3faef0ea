"""Parameters and FLOPs of the task paths of single- and multi-task models.

A *task path* is what one task's forward runs: for a ``MultiTaskModel``,
the copies of the shared backbone's stages on the task's path and the task
model's own modules (neck, heads); for a plain OpenMMLab model, the whole
model. FLOPs come from MMEngine's :class:`~mmengine.analysis.FlopAnalyzer`,
which counts one fused multiply-add as one FLOP, as OpenMMLab's
``get_flops`` tools report.
"""
from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count

from mtl_pvt.models import MultiTaskModel
from mtl_pvt.tasks import TaskKind, all_kinds, kind_of_model, model_task_kinds


def task_models(model: nn.Module,
                name: Optional[str] = None) -> Dict[str, nn.Module]:
    """The task models of ``model``, by task name.

    Args:
        model (nn.Module): A ``MultiTaskModel`` or a single-task model.
        name (str, optional): Name of a single-task model whose kind is
            unknown (e.g. the config stem). Defaults to ``'model'``.

    Returns:
        dict[str, nn.Module]: ``model.tasks`` of a ``MultiTaskModel``, else
        ``{kind: model}`` (``{name: model}`` if the kind is unknown).
    """
    if isinstance(model, MultiTaskModel):
        return dict(model.tasks.items())
    kind = kind_of_model(model)
    return {kind.name if kind else name or 'model': model}


def task_kinds(model: nn.Module,
               name: Optional[str] = None) -> Dict[str, Optional[TaskKind]]:
    """The kind of each of :func:`task_models`, by task name (None: no
    known kind): a ``MultiTaskModel``'s :attr:`task_kinds`, so that a task
    named ``imnet`` may be a ``cls`` task; that of a single-task model's
    class."""
    kinds = model_task_kinds(model)
    return {task: kinds.get(task) for task in task_models(model, name)}


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module``, each shared tensor once."""
    return parameter_count(module)['']


def shared_params(model: nn.Module) -> int:
    """Parameters of the backbone stage copies run by more than one task
    (0 for a single-task model)."""
    if not isinstance(model, MultiTaskModel):
        return 0
    return sum(
        count_params(copy.module) for copy in model.backbone.stage_copies()
        if len(copy.tasks) > 1)


def path_params(model: nn.Module, task: str) -> int:
    """Parameters that ``task``'s forward uses.

    The stage copies on its path of the shared backbone plus the task
    model's own parameters; all of a single-task model's parameters.
    """
    if not isinstance(model, MultiTaskModel):
        return count_params(model)
    stages = model.backbone.task_stages(task)
    return count_params(model.tasks[task]) + sum(
        count_params(stage) for _, stage in stages)


def flatten_tensors(outputs) -> Tuple[torch.Tensor, ...]:
    """The tensors in nested tuples, lists and dicts, in order.

    mmdet's one-stage heads return tuples of lists (one tensor per level),
    two-stage detectors nested tuples; the tracer's outputs are flat.
    """
    if isinstance(outputs, torch.Tensor):
        return (outputs, )
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return tuple(t for item in outputs for t in flatten_tensors(item))
    return ()


class TaskPath(nn.Module):
    """One task path as a module that maps an image batch to tensors.

    ``forward(x)`` runs the task model in ``'tensor'`` mode (backbone, neck
    and heads, no post-processing). The shared backbone of a multi-task
    model is registered here because the task model only holds it
    unregistered: the tracer must see its parameters as module parameters
    (it refuses to embed tensors that require grad as constants).

    Args:
        model (nn.Module): The task model.
        shared (nn.Module, optional): The shared backbone it reads through
            its ``TaskBackboneView``. Defaults to None.
        kind (TaskKind, optional): The task's kind; None: that of
            ``model``'s class. Defaults to None.
    """

    def __init__(self,
                 model: nn.Module,
                 shared: Optional[nn.Module] = None,
                 kind: Optional[TaskKind] = None):
        super().__init__()
        self.model = model
        self.shared = shared
        self.kind = kind if kind is not None else kind_of_model(model)
        self.data_samples = None

    @property
    def backbone_scope(self) -> str:
        """Module name under which the tracer records the backbone ops."""
        return 'shared' if self.shared is not None else 'model.backbone'

    def set_input_shape(self, shape: Sequence[int]) -> None:
        """Give the task model the data samples that its kind reads in
        ``'tensor'`` mode for an input of ``(H, W)``
        (:meth:`TaskKind.flops_samples`: image metas for detectors, none
        for the others)."""
        self.data_samples = None if self.kind is None else \
            self.kind.flops_samples(shape)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        samples = self.data_samples
        if samples is not None:
            samples = samples * x.shape[0]
        return flatten_tensors(self.model(x, samples, mode='tensor'))


def resolve_input_shapes(
    tasks: Mapping[str, nn.Module],
    overrides: Optional[Mapping[str, Sequence[int]]] = None,
    kinds: Optional[Mapping[str, Optional[TaskKind]]] = None
) -> Dict[str, Tuple[int, int]]:
    """``(H, W)`` of each task's input.

    Args:
        tasks (Mapping[str, nn.Module]): Task name -> task model.
        overrides (Mapping[str, Sequence[int]], optional): ``(H, W)`` by task
            name, by kind (``'cls'``, ``'det'``, ``'seg'``) or for all tasks
            under ``''``, in that priority, before the standard shape of the
            task's kind (:attr:`TaskKind.input_shape`). Defaults to None.
        kinds (Mapping[str, TaskKind], optional): Task name -> its kind
            (None: unknown); a task it leaves out has the kind of its task
            model's class. Defaults to None.

    Raises:
        ValueError: For an override key that names no task or kind, or a
            task of unknown kind without an override.
    """
    overrides = dict(overrides or {})
    given = dict(kinds or {})
    kinds = {
        name: given[name] if name in given else kind_of_model(model)
        for name, model in tasks.items()
    }
    names = {
        name: None if kind is None else kind.name
        for name, kind in kinds.items()
    }
    unknown = sorted(set(overrides) - {''} - set(tasks) - set(names.values()))
    if unknown:
        raise ValueError(f'input shapes given for {unknown}, which are '
                         f'neither tasks nor task kinds: {names}')
    shapes = {}
    for name, kind in kinds.items():
        for key in (name, names[name], ''):
            if key in overrides:
                shapes[name] = tuple(overrides[key])
                break
        else:
            if kind is None:
                raise ValueError(f'task {name!r} is of no known kind '
                                 f'{sorted(all_kinds())}: give its input '
                                 'shape')
            shapes[name] = tuple(kind.input_shape)
    return shapes


@torch.no_grad()
def path_flops(path: TaskPath, shape: Sequence[int]) -> dict:
    """FLOPs of one forward of ``path`` on a ``1x3xHxW`` input.

    Args:
        path (TaskPath): The task path, in eval mode.
        shape (Sequence[int]): ``(H, W)`` of the input.

    Returns:
        dict: ``flops`` (the whole path), ``backbone_flops`` (its backbone
        stages) and ``unsupported_ops`` (operator -> times seen, which the
        analyzer has no FLOP formula for and counts as 0).
    """
    path.set_input_shape(shape)
    param = next(path.parameters())
    # A fixed input: the proposals of two-stage detectors, and so their
    # RoI head FLOPs, depend on it.
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(1, 3, *shape, generator=generator)
    analyzer = FlopAnalyzer(path, (image.to(param.device), ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return dict(
        flops=analyzer.total(),
        backbone_flops=analyzer.total(path.backbone_scope),
        unsupported_ops=dict(analyzer.unsupported_ops()))


def complexity_report(model: nn.Module,
                      input_shapes: Optional[Mapping[str,
                                                     Sequence[int]]] = None,
                      with_flops: bool = True,
                      name: Optional[str] = None) -> dict:
    """Parameters and FLOPs of every task path of ``model``.

    The model runs in eval mode for the FLOPs and gets its mode back.

    Args:
        model (nn.Module): A ``MultiTaskModel`` or a single-task model.
        input_shapes (Mapping[str, Sequence[int]], optional): Overrides of
            the standard ``(H, W)``, see :func:`resolve_input_shapes`.
            Defaults to None.
        with_flops (bool): Whether to count FLOPs (parameters only is
            fast). Defaults to True.
        name (str, optional): Task name of a single-task model of unknown
            kind. Defaults to None.

    Returns:
        dict: ``params_total``, ``params_shared`` and ``tasks``: task name
        -> ``kind``, ``params``, ``input_shape`` (H, W) and, None without
        ``with_flops``, ``flops``, ``backbone_flops``, ``unsupported_ops``.
    """
    tasks = task_models(model, name)
    kinds = task_kinds(model, name)
    shapes = resolve_input_shapes(tasks, input_shapes, kinds)
    shared = model.backbone if isinstance(model, MultiTaskModel) else None
    report = dict(
        params_total=count_params(model),
        params_shared=shared_params(model),
        tasks={})
    was_training = model.training
    model.eval()
    try:
        for task, task_model in tasks.items():
            result = dict(
                kind=None if kinds[task] is None else kinds[task].name,
                params=path_params(model, task),
                input_shape=list(shapes[task]),
                flops=None,
                backbone_flops=None,
                unsupported_ops=None)
            if with_flops:
                result.update(
                    path_flops(
                        TaskPath(task_model, shared, kinds[task]),
                        shapes[task]))
            report['tasks'][task] = result
    finally:
        model.train(was_training)
    return report


def _millions(num: int) -> str:
    return f'{num / 1e6:.3f}'


def _giga(num: Optional[int]) -> str:
    return '-' if num is None else f'{num / 1e9:.2f}'


def _format_rows(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells as aligned columns, text left, numbers right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append('  '.join(cells).rstrip())
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


def format_report(report: dict, title: Optional[str] = None) -> str:
    """:func:`complexity_report`'s numbers as a text table.

    Args:
        report (dict): The output of :func:`complexity_report`.
        title (str, optional): A first line, e.g. the config path.

    Returns:
        str: The table, then a note on the operators counted as 0 FLOPs.
    """
    rows = [('task', 'input HxW', 'params (M)', 'params', 'GFLOPs',
             'backbone GFLOPs')]
    for task, res in report['tasks'].items():
        rows.append((task, 'x'.join(map(str, res['input_shape'])),
                     _millions(res['params']), f"{res['params']:,}",
                     _giga(res['flops']), _giga(res['backbone_flops'])))
    for label, key in (('shared', 'params_shared'), ('total', 'params_total')):
        rows.append(
            (label, '', _millions(report[key]), f'{report[key]:,}', '', ''))
    lines = [title] if title else []
    lines.append(_format_rows(rows))
    counted = [r for r in report['tasks'].values() if r['flops'] is not None]
    if counted:
        lines.append('FLOPs: MMEngine FlopAnalyzer, 1 multiply-add = 1 FLOP')
    uncounted = sorted(set().union(*(r['unsupported_ops'] for r in counted)))
    if uncounted:
        lines.append('Counted as 0 (no FLOP formula): ' + ', '.join(uncounted))
    return '\n'.join(lines)
