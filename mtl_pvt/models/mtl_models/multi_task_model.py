"""Several standard OpenMMLab task models on one shared PVT v2 backbone."""
import copy
from collections import OrderedDict
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmdet.models.utils import rename_loss_dict, reweight_loss_dict
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, ModuleDict
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.structures import BaseDataElement

from mtl_pvt.registry import MODELS
from mtl_pvt.structures import check_task_name, split_losses_by_task
from mtl_pvt.tasks import resolve_task_kinds
from mtl_pvt.utils.randomness import derive_seed, seeded
from mtl_pvt.utils.typing_utils import ConfigType, OptConfigType


@MODELS.register_module()
class MultiTaskModel(BaseModel):
    """Task models of mmpretrain, mmdet and mmseg on one ``SharedPVTv2``.

    Each task keeps its standard OpenMMLab model (``ImageClassifier``,
    ``RetinaNet``, ``MaskRCNN``, ``EncoderDecoder``...), built from its own
    config, whose backbone slot is a parameter-free ``TaskBackboneView`` of
    the shared backbone. Losses, post-processing and predictions are
    therefore those of the task models themselves.

    Call flow::

        data_preprocessor(): group the batch by metainfo['task'] -> each
                             task model's own data preprocessor
        loss():    for each task present:
                     tasks[t].loss() -> extract_feat() -> TaskBackboneView
                       -> SharedPVTv2.forward(x, t) -> neck / heads
                   -> reweight by loss_weights[t] -> keys prefixed 't.'
        predict(): tasks[t].predict() per task -> the standard data samples,
                   back in batch order

    Each task draws its random numbers from its own streams, seeded by
    ``(seed, what, task[, iteration])``: its model's construction and
    ``init_weights`` (the backbone's from ``(seed, 'backbone')``, which all
    trees share), its batch preprocessing (batch augmentations) and its
    training forward (stochastic depth, dropout) of every iteration. A
    task therefore trains on the same random numbers whatever the other
    tasks are, so a run without sharing gives each task exactly the updates
    of its one-task run (see :mod:`mtl_pvt.utils.randomness`).

    Examples:
        >>> model = dict(
        ...     type='MultiTaskModel',
        ...     backbone=dict(type='SharedPVTv2', share_stages=4,
        ...                   arch=dict(embed_dims=64,
        ...                             num_layers=[3, 4, 6, 3])),
        ...     tasks=dict(cls=_base_.cls_model, det=_base_.det_model,
        ...                seg=_base_.seg_model),
        ...     loss_weights=dict(cls=1., det=1., seg=1.))

    Args:
        backbone (dict): Config of the ``SharedPVTv2``. Its ``tasks``
            default to the keys of ``tasks``, and each task's
            ``out_indices`` to those of the task config's own backbone.
        tasks (dict[str, dict]): Task name -> config of a standard task
            model. Its ``backbone`` entry is replaced by the shared one.
        loss_weights (dict[str, float], optional): Static weight of each
            task's losses. Defaults to 1 for every task.
        nonfinite_losses (str): ``'raise'``: a NaN or infinite loss stops
            training before the optimizer step, naming the task and the
            iteration; ``'skip'``: such steps are skipped and counted
            (needs ``MultiTaskOptimWrapper``). Defaults to ``'raise'``.
        task_kinds (dict[str, str], optional): Task name -> kind name
            (``'cls'``, ``'det'``, ``'seg'``: :mod:`mtl_pvt.tasks`) for tasks
            whose kind is not the one their task model's class gives (or
            has none). Task names are free: ``tasks=dict(imnet=...,
            places=..., coco=...)``. The resolved kinds are
            :attr:`task_kinds`. Defaults to None.
        seed (int, optional): Seed of the tasks' random streams. Defaults to
            None: the seed of torch's default generator when the model is
            built (MMEngine's ``randomness.seed``: the Runner seeds torch
            before it builds the model).
        data_preprocessor (dict, optional): Defaults to
            ``MultiTaskDataPreprocessor``, which calls the task models' own.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 tasks: Dict[str, ConfigType],
                 loss_weights: Optional[Dict[str, float]] = None,
                 nonfinite_losses: str = 'raise',
                 task_kinds: Optional[Dict[str, str]] = None,
                 seed: Optional[int] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None):
        if nonfinite_losses not in ('raise', 'skip'):
            raise ValueError("nonfinite_losses must be 'raise' or 'skip', "
                             f'but got {nonfinite_losses!r}')
        if data_preprocessor is None:
            data_preprocessor = dict(type='mtl_pvt.MultiTaskDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not tasks:
            raise ValueError('MultiTaskModel needs at least one task')
        for name in tasks:
            check_task_name(name, 'MultiTaskModel tasks')
        self.task_names = list(tasks)
        self.nonfinite_losses = nonfinite_losses
        self.seed = torch.initial_seed() if seed is None else int(seed)
        self.loss_weights = self._check_loss_weights(loss_weights or {})
        with self.random_stream('build', 'backbone'):
            self.backbone = MMENGINE_MODELS.build(
                self._backbone_cfg(backbone, tasks))
        # mmengine's ModuleDict passes init_weights() on to the task models
        self.tasks = ModuleDict()
        for name, cfg in tasks.items():
            with self.random_stream('build', name):
                self.tasks[name] = self._build_task(name, cfg)
        # task name -> kind name (None: no known kind), what the tools read
        self.task_kinds = resolve_task_kinds(self.tasks, task_kinds)
        self.data_preprocessor.bind(
            {
                name: m.data_preprocessor
                for name, m in self.tasks.items()
            },
            random_stream=self.forward_stream)

    def random_stream(self, *keys):
        """Python's, numpy's and torch's generators seeded by ``(seed,
        *keys)`` within the context, restored after it."""
        return seeded(derive_seed(self.seed, *keys))

    def forward_stream(self, what: str, task: str):
        """The random stream of ``task``'s training ``what`` ('forward',
        'batch') in this iteration (MMEngine's runtime info ``iter``).

        Outside a runner (no ``iter`` in the message hub) the global
        generators, as in a plain model.
        """
        it = MessageHub.get_current_instance().get_info('iter')
        if it is None:
            return nullcontext()
        return self.random_stream(what, task, it)

    def init_weights(self) -> None:
        """``BaseModule.init_weights``, the backbone's and each task
        model's in its own random stream (the same whatever the tasks)."""
        with ExitStack() as stack:
            children = [('backbone', self.backbone), *self.tasks.items()]
            for name, module in children:
                stack.enter_context(
                    _seeded_call(
                        module,
                        'init_weights',
                        lambda n=name: self.random_stream('init', n)))
            super().init_weights()

    def _check_loss_weights(self, weights):
        unknown = sorted(set(weights) - set(self.task_names))
        if unknown:
            raise ValueError(f'loss_weights names unknown task(s) {unknown} '
                             f'(tasks: {self.task_names})')
        bad = {t: w for t, w in weights.items() if not 0 <= w < float('inf')}
        if bad:
            raise ValueError(
                f'loss_weights must be finite and >= 0, but got {bad}')
        return {t: float(weights.get(t, 1.)) for t in self.task_names}

    def _backbone_cfg(self, backbone, tasks):
        cfg = copy.deepcopy(dict(backbone))
        given = cfg.setdefault('tasks', self.task_names)
        if list(given) != self.task_names:
            raise ValueError(f'the backbone names tasks {list(given)} but '
                             f'the model has tasks {self.task_names}')
        out_indices = dict(cfg.get('out_indices') or {})
        for name, task_cfg in tasks.items():
            task_backbone = task_cfg.get('backbone') or {}
            if name not in out_indices and 'out_indices' in task_backbone:
                out_indices[name] = tuple(task_backbone['out_indices'])
        cfg['out_indices'] = out_indices
        cfg.setdefault('type', 'mtl_pvt.SharedPVTv2')
        return cfg

    def _build_task(self, name, cfg):
        cfg = copy.deepcopy(dict(cfg))
        self._check_decoder_inputs(name, cfg)
        cfg['backbone'] = dict(type='mtl_pvt.TaskBackboneView', task=name)
        model = MMENGINE_MODELS.build(cfg)
        model.backbone.bind(self.backbone)
        return model

    def _check_decoder_inputs(self, name, cfg):
        """The modules that read the backbone must get what they expect."""
        channels = self.backbone.out_channels(name)
        for where, in_channels, in_index in _backbone_readers(cfg):
            levels = range(len(channels)) if in_index is None else \
                in_index if isinstance(in_index, (list, tuple)) else \
                [in_index]
            missing = [
                i for i in levels if not -len(channels) <= i < len(channels)
            ]
            if missing:
                raise ValueError(
                    f'task {name!r}: its {where} reads feature level(s) '
                    f'{missing}, but its path of the shared backbone yields '
                    f'{len(channels)} level(s) (out_indices '
                    f'{self.backbone.out_indices[name]})')
            got = [channels[i] for i in levels]
            expected = list(in_channels) if isinstance(
                in_channels, (list, tuple)) else [in_channels]
            if expected != got:
                raise ValueError(
                    f'task {name!r}: its {where} takes in_channels='
                    f'{in_channels}, but its path of the shared backbone '
                    f'yields {got} (out_indices '
                    f'{self.backbone.out_indices[name]}, stage channels '
                    f'{self.backbone.num_channels})')

    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[Dict[str, list]] = None,
                mode: str = 'tensor',
                batch_indices: Optional[Dict[str, List[int]]] = None):
        """Run every task present in ``inputs`` in ``mode``.

        Args:
            inputs (dict[str, Tensor]): Preprocessed inputs per task.
            data_samples (dict[str, list], optional): Data samples per task.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.
            batch_indices (dict[str, list[int]], optional): Positions of
                each task's samples in the batch, to restore its order.

        Returns:
            dict | list: Losses, data samples in batch order, or the raw
            outputs of each task.
        """
        data_samples = data_samples or {}
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples, batch_indices)
        if mode == 'tensor':
            return {
                task: self.tasks[task](x, data_samples.get(task), 'tensor')
                for task, x in inputs.items()
            }
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, '
                           'predict and tensor mode')

    def extract_feat(self, inputs: Dict[str, torch.Tensor]) -> dict:
        """Each task model's own ``extract_feat`` (backbone and neck)."""
        return {
            task: self.tasks[task].extract_feat(x)
            for task, x in inputs.items()
        }

    def loss(self, inputs: Dict[str, torch.Tensor],
             data_samples: Dict[str, list]) -> dict:
        """Losses of the tasks present, weighted and prefixed ``'<task>.'``.
        """
        losses = dict()
        for task, x in inputs.items():
            with self.forward_stream('forward', task):
                task_losses = self.tasks[task].loss(x, data_samples[task])
            if self.loss_weights[task] != 1.:
                task_losses = reweight_loss_dict(task_losses,
                                                 self.loss_weights[task])
            losses.update(rename_loss_dict(f'{task}.', task_losses))
        return losses

    def parse_losses(self, losses: Dict[str, torch.Tensor]):
        """``BaseModel.parse_losses``, checked for non-finite losses (a
        plain ``OptimWrapper`` trains on its total exactly as before;
        :meth:`train_step` hands ``MultiTaskOptimWrapper`` each task's sum).

        Raises:
            FloatingPointError: With ``nonfinite_losses='raise'``, when a
                loss is NaN or infinite: names the task, its loss keys and
                the iteration, before any backward or optimizer step.
        """
        total, log_vars = super().parse_losses(losses)
        if self.nonfinite_losses == 'raise' and \
                not torch.isfinite(total.detach()):
            bad = sorted(key for key, value in log_vars.items()
                         if '.' in key and 'loss' in key
                         and not torch.isfinite(torch.as_tensor(value)))
            # the runtime info counts from 0, checkpoint names from 1
            it = MessageHub.get_current_instance().get_info('iter', -1) + 1
            raise FloatingPointError(
                f'non-finite loss at iteration {it}: {bad} (tasks '
                f'{sorted({k.partition(".")[0] for k in bad})}); training '
                'stopped before the optimizer step, so no checkpoint holds '
                "non-finite weights (model.nonfinite_losses='skip' with "
                'MultiTaskOptimWrapper skips such steps instead)')
        return total, log_vars

    def train_step(self,
                   data,
                   optim_wrapper,
                   ddp: Optional[nn.Module] = None) -> Dict[str, torch.Tensor]:
        """One training step; the per-task losses go to the optimiser
        wrapper explicitly.

        With a ``MultiTaskOptimWrapper`` every step takes one path: the
        wrapper's ``update_tasks`` asks for the losses of groups of tasks,
        all of them at once (a joint step, whose forward runs in the
        preprocessing's context as in ``BaseModel.train_step``) or one at
        a time (``task_by_task=True``: each task's forward and backward run
        before the next task's forward, so only one task's activations are
        alive at a time), and backpropagates, weights, aggregates and
        updates. Any other optimiser wrapper gets ``BaseModel.train_step``
        (the total loss).

        Args:
            data (dict): The batch.
            optim_wrapper (OptimWrapper): The optimiser wrapper.
            ddp (nn.Module, optional): The DDP wrapper of this model, whose
                ``train_step`` calls this one: a joint step's forward runs
                through it (its reducer), and the optimiser wrapper's
                context gets it. Defaults to None.
        """
        if not hasattr(optim_wrapper, 'update_tasks'):
            return super().train_step(data, optim_wrapper)
        outer = self if ddp is None else ddp
        logs: List[Dict[str, torch.Tensor]] = []
        with optim_wrapper.optim_context(outer):
            data = self.data_preprocessor(data, True)
            inputs = data['inputs']
            samples = data.get('data_samples') or {}
            joint = None if optim_wrapper.task_by_task else \
                outer(**data, mode='loss')

        def losses_of(tasks: List[str]) -> Dict[str, torch.Tensor]:
            """Each of ``tasks``' summed loss; its log kept (detached)."""
            losses = joint
            if losses is None:
                with optim_wrapper.optim_context(outer):
                    losses = self.loss({t: inputs[t]
                                        for t in tasks},
                                       {t: samples[t]
                                        for t in tasks})
            _, log_vars = self.parse_losses(losses)
            logs.append(
                OrderedDict((k, v.detach()) for k, v in log_vars.items()))
            return split_losses_by_task(losses, tasks)

        optim_wrapper.update_tasks(losses_of, list(inputs))
        if len(logs) == 1:
            return logs[0]
        log_vars = OrderedDict(
            (k, v) for log in logs for k, v in log.items() if k != 'loss')
        log_vars['loss'] = sum(v for k, v in log_vars.items() if 'loss' in k)
        log_vars.move_to_end('loss', last=False)
        return log_vars

    def predict(
        self,
        inputs: Dict[str, torch.Tensor],
        data_samples: Dict[str, list],
        batch_indices: Optional[Dict[str, Sequence[int]]] = None
    ) -> List[BaseDataElement]:
        """Each task's own ``predict()``; results in batch order."""
        results: List[Union[BaseDataElement, None]] = []
        positions = []
        for task, x in inputs.items():
            results.extend(self.tasks[task].predict(x, data_samples.get(task)))
            positions.extend(batch_indices[task] if batch_indices else range(
                len(positions), len(results)))
        ordered = [None] * len(results)
        for position, result in zip(positions, results):
            ordered[position] = result
        return ordered


@contextmanager
def _seeded_call(module, method: str, stream):
    """Within the context, ``module.<method>()`` runs inside the context
    ``stream()`` returns."""
    original = getattr(module, method)

    def call(*args, **kwargs):
        with stream():
            return original(*args, **kwargs)

    setattr(module, method, call)  # an instance attribute hides the method
    try:
        yield
    finally:
        delattr(module, method)


def _backbone_readers(cfg):
    """(name, in_channels, in_index) of the modules fed by the backbone.

    The neck when there is one (it takes every level); otherwise the heads
    (``in_index`` as mmseg's decode heads give it; mmpretrain's heads, behind
    a pooling neck, read the last level).
    """
    neck = cfg.get('neck')
    if isinstance(neck, dict) and 'in_channels' in neck:
        return [(f"neck ({neck['type']})", neck['in_channels'], None)]
    readers = []
    for key in ('head', 'decode_head', 'auxiliary_head'):
        heads = cfg.get(key)
        for i, head in enumerate(
                heads if isinstance(heads, list) else [heads]):
            if isinstance(head, dict) and 'in_channels' in head:
                where = f"{key}{f'[{i}]' if isinstance(heads, list) else ''}"
                readers.append(
                    (f"{where} ({head['type']})", head['in_channels'],
                     head.get('in_index', -1)))
    return readers
