"""Several standard OpenMMLab task models on one shared PVT v2 backbone."""
import copy
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmdet.models.utils import rename_loss_dict, reweight_loss_dict
from mmengine.model import BaseModel, ModuleDict
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.structures import BaseDataElement

from mtl_pvt.registry import MODELS
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
        data_preprocessor (dict, optional): Defaults to
            ``MultiTaskDataPreprocessor``, which calls the task models' own.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 tasks: Dict[str, ConfigType],
                 loss_weights: Optional[Dict[str, float]] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mtl_pvt.MultiTaskDataPreprocessor')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not tasks:
            raise ValueError('MultiTaskModel needs at least one task')
        self.task_names = list(tasks)
        self.loss_weights = self._check_loss_weights(loss_weights or {})
        self.backbone = MMENGINE_MODELS.build(
            self._backbone_cfg(backbone, tasks))
        # mmengine's ModuleDict passes init_weights() on to the task models
        self.tasks = ModuleDict()
        for name, cfg in tasks.items():
            self.tasks[name] = self._build_task(name, cfg)
        self.data_preprocessor.bind({
            name: m.data_preprocessor
            for name, m in self.tasks.items()
        })

    def _check_loss_weights(self, weights):
        unknown = sorted(set(weights) - set(self.task_names))
        if unknown:
            raise ValueError(f'loss_weights names unknown task(s) {unknown} '
                             f'(tasks: {self.task_names})')
        bad = {t: w for t, w in weights.items() if not w >= 0}
        if bad:
            raise ValueError(f'loss_weights must be >= 0, but got {bad}')
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
            task_losses = self.tasks[task].loss(x, data_samples[task])
            if self.loss_weights[task] != 1.:
                task_losses = reweight_loss_dict(task_losses,
                                                 self.loss_weights[task])
            losses.update(rename_loss_dict(f'{task}.', task_losses))
        return losses

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
