"""Inference of several tasks on images, each shared stage once per image."""
import os.path as osp
from datetime import datetime
from typing import (Callable, Dict, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import mmcv
import mmengine
import numpy as np
import torch
import torch.nn as nn
from mmengine.dataset import Compose, pseudo_collate
from mmengine.infer.infer import BaseInferencer, ModelType
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import VISUALIZERS, init_default_scope
from mmengine.structures import BaseDataElement
from rich.progress import track

from mtl_pvt.tasks import TaskKind, all_kinds, model_task_kinds
from mtl_pvt.utils import register_all_modules
from .drawing import class_colours, draw_panels
from .outputs import load_rgb, pred_to_dict
from .preprocessing import (config_test_scale, inputs_to_list, normalization,
                            normalize_and_pad, shared_normalization)
from .weights import load_weights_and_metas

InputType = Union[str, np.ndarray]
InputsType = Union[InputType, Sequence[InputType]]
PredType = Dict[str, BaseDataElement]

# Every task decoder (FPN strides up to 32, PVT v2 patch embeddings) takes
# inputs whose sides are multiples of 32.
SIZE_DIVISOR = 32


class MultiTaskInferencer(BaseInferencer):
    """Predictions of all (or chosen) tasks of a ``MultiTaskModel``.

    Each image is preprocessed once into one tensor for all tasks, each
    stage copy of the shared backbone runs once on it
    (:meth:`SharedBackbone.forward_tasks`), and each task model's own
    ``predict()`` then post-processes its features inside
    :meth:`SharedBackbone.reuse_features`, so the predictions are the
    libraries' data samples (each task's kind, :mod:`mtl_pvt.tasks`, names
    its sample type and prediction field: mmpretrain ``DataSample`` with
    ``pred_score``, mmdet ``DetDataSample`` with ``pred_instances``, mmseg
    ``SegDataSample`` with ``pred_sem_seg``), in the coordinates of the
    original image. Task names are free: what a task is comes from the
    model's ``task_kinds``.

    Call flow::

        __call__(): _inputs_to_list() -> for each image:
            preprocess(): pipeline (load, Resize) -> pack(): normalise and
                          pad once; one data sample per task
            forward():    predict_tasks() -> forward_tasks() once ->
                          tasks[t].predict() per task
            visualize():  one panel per task (the image enlarged to at
                          least panel_size px), in the kinds' draw_order
            postprocess(): data samples or JSON-friendly dicts; JSON files

    All tasks read one tensor, so their data preprocessors must agree on
    mean, std, channel order and pad value (checked; a clear error
    otherwise). The image is resized as the config's test pipelines resize
    it for the first task that has a ``Resize`` (mmdet's test scale for the
    cls/det/seg configs) and padded to a multiple of 32; the classifier
    thus sees the whole image at that scale, not a centre crop.

    Examples:
        >>> inferencer = MultiTaskInferencer(
        ...     'configs/mtl/pvtv2_b2_full_share.py', 'iter_90000.pth')
        >>> result = inferencer('demo.jpg', out_dir='outputs')
        >>> result['predictions'][0]['cls']['topk_classes']

    Args:
        model (str | Config | dict): Config (path) of a ``MultiTaskModel``
            on a ``SharedBackbone``.
        weights (str, optional): Checkpoint path. Without one, the model
            keeps its random initialisation (a warning says so).
            Defaults to None.
        device (str, optional): Device to run on; None picks the available
            one. Defaults to None.
        tasks (Sequence[str], optional): Tasks run by default; None for all
            of the model's. Defaults to None.
        scale (tuple[int, int], optional): ``(w, h)`` scale of mmdet's
            ``Resize`` applied before inference; None takes it from the
            config's test pipelines. Defaults to None.
        keep_ratio (bool): Keep the aspect ratio when ``scale`` is given.
            Defaults to True.
        scope (str): The default scope. Defaults to ``'mtl_pvt'``.
        show_progress (bool): Show a progress bar. Defaults to True.
    """

    # the short side of a drawn panel, at least: small images are enlarged
    # so that the libraries' labels can be read
    panel_size: int = 384
    preprocess_kwargs: set = set()
    forward_kwargs: set = {'tasks'}
    visualize_kwargs: set = {
        'return_vis', 'show', 'wait_time', 'pred_score_thr', 'topk',
        'img_out_dir', 'no_save_vis'
    }
    postprocess_kwargs: set = {
        'print_result', 'pred_out_dir', 'return_datasamples', 'no_save_pred'
    }

    def __init__(self,
                 model: ModelType,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 tasks: Optional[Sequence[str]] = None,
                 scale: Optional[Tuple[int, int]] = None,
                 keep_ratio: bool = True,
                 scope: str = 'mtl_pvt',
                 show_progress: bool = True) -> None:
        self.num_visualized_imgs = 0
        self.num_predicted_imgs = 0
        self._requested_tasks = tasks
        self.scale, self.keep_ratio = scale, keep_ratio
        register_all_modules(init_default_scope=False)
        init_default_scope(scope)
        super().__init__(
            model=model,
            weights=weights,
            device=device,
            scope=scope,
            show_progress=show_progress)

    def _init_model(self, cfg: mmengine.Config, weights: Optional[str],
                    device: str) -> nn.Module:
        """Build and load the model; check it and the default tasks."""
        model = revert_sync_batchnorm(super()._init_model(
            cfg, weights, device))
        backbone = getattr(model, 'backbone', None)
        if not hasattr(backbone, 'reuse_features') or not hasattr(
                model, 'tasks'):
            raise TypeError(
                'MultiTaskInferencer needs a MultiTaskModel on a '
                'SharedBackbone (SharedPVTv2, ...), but the config builds a '
                f'{type(model).__name__} with a '
                f'{type(backbone).__name__} backbone')
        self.task_kinds = self._known_kinds(model)
        self.sample_types = {
            task: kind.sample_class()
            for task, kind in self.task_kinds.items()
        }
        self.normalizations = {
            task: normalization(task_model.data_preprocessor)
            for task, task_model in model.tasks.items()
        }
        self.tasks = list(model.task_names)
        self.tasks = self._check_tasks(self._requested_tasks, model.task_names)
        shared_normalization(self.normalizations, self.tasks)
        return model

    @staticmethod
    def _known_kinds(model: nn.Module) -> Dict[str, TaskKind]:
        """The kind of each task of ``model``.

        Raises:
            TypeError: Naming a task of no known kind.
        """
        kinds = model_task_kinds(model)
        for task, kind in kinds.items():
            if kind is None:
                raise TypeError(
                    f'task {task!r}: its task model '
                    f'{type(model.tasks[task]).__name__} is of no known '
                    f'kind {sorted(all_kinds())}, so its predictions '
                    "cannot be made; name its kind in the model's "
                    'task_kinds')
        return kinds

    def _check_tasks(self,
                     tasks: Union[str, Sequence[str], None],
                     available: Optional[Sequence[str]] = None) -> List[str]:
        """``tasks`` as a list, the default tasks if None.

        Raises:
            ValueError: If a task is unknown (naming the available ones) or
                none is chosen.
        """
        available = list(available or self.model.task_names)
        tasks = self.tasks if tasks is None else tasks
        tasks = [tasks] if isinstance(tasks, str) else list(tasks)
        unknown = [task for task in tasks if task not in available]
        if unknown or not tasks:
            raise ValueError(f'unknown task(s) {unknown}: the model has the '
                             f'tasks {available}' if unknown else
                             f'no task chosen; the model has {available}')
        return tasks

    def _load_weights_to_model(self, model: nn.Module,
                               checkpoint: Optional[dict],
                               cfg: mmengine.Config) -> None:
        """The weights and each task's class names
        (:func:`~.weights.load_weights_and_metas`)."""
        load_weights_and_metas(model, checkpoint, cfg)

    def _init_pipeline(self, cfg: mmengine.Config) -> Compose:
        """Load the image (path or BGR array) and resize it as the test
        pipelines do; the rest of the preprocessing is :meth:`pack`."""
        if self.scale is None:
            self.scale, self.keep_ratio = config_test_scale(cfg, self.tasks)
        transforms = [dict(type='mmdet.InferencerLoader')]
        if self.scale is not None:
            transforms.append(
                dict(
                    type='mmdet.Resize',
                    scale=self.scale,
                    keep_ratio=self.keep_ratio))
        return Compose(transforms)

    def _init_collate(self, cfg: mmengine.Config) -> Callable:
        """Unused: :meth:`pack` makes each one-image batch."""
        return pseudo_collate

    def _init_visualizer(self, cfg: mmengine.Config) -> Dict[str, object]:
        """One library visualiser per kind of the model's tasks, by kind
        name, in drawing order (:attr:`TaskKind.draw_order`)."""
        stamp = datetime.now().timestamp()
        kinds = {kind.name: kind for kind in self.task_kinds.values()}
        return {
            name:
            VISUALIZERS.build(
                dict(
                    kind.visualizer,
                    name=f'mtl_infer_{name}_{id(self)}_{stamp}'))
            for name, kind in sorted(
                kinds.items(), key=lambda item: item[1].draw_order)
        }

    def _inputs_to_list(self, inputs: InputsType) -> list:
        """Inputs as a list (:func:`~.preprocessing.inputs_to_list`)."""
        return inputs_to_list(inputs)

    def __call__(self,
                 inputs: InputsType,
                 tasks: Optional[Sequence[str]] = None,
                 batch_size: int = 1,
                 return_vis: bool = False,
                 show: bool = False,
                 wait_time: float = 0,
                 no_save_vis: bool = False,
                 pred_score_thr: float = 0.3,
                 topk: int = 5,
                 return_datasamples: bool = False,
                 print_result: bool = False,
                 no_save_pred: bool = False,
                 out_dir: str = '',
                 **kwargs) -> dict:
        """Predict ``tasks`` on ``inputs``.

        Args:
            inputs (str | np.ndarray | list): Image paths, a directory, or
                BGR ``uint8`` arrays (as ``mmcv.imread`` returns them).
            tasks (Sequence[str], optional): Tasks to run; None for the
                default ones. Defaults to None.
            batch_size (int): Must be 1: each image is padded on its own,
                so its predictions never depend on other images.
            return_vis (bool): Return the drawn pictures. Defaults to False.
            show (bool): Show them in a window. Defaults to False.
            wait_time (float): Seconds to show each one. Defaults to 0.
            no_save_vis (bool): Do not save the pictures. Defaults to False.
            pred_score_thr (float): Score from which boxes are drawn.
                Defaults to 0.3.
            topk (int): Classes drawn and listed for classification tasks.
                Defaults to 5.
            return_datasamples (bool): Return the data samples rather than
                dicts. Defaults to False.
            print_result (bool): Print the predictions. Defaults to False.
            no_save_pred (bool): Do not save JSON files. Defaults to False.
            out_dir (str): Where to save ``vis/<image>.png`` and
                ``preds/<image>.json`` (segmentation maps as
                ``preds/<image>_<task>.png``); '' saves nothing.
            **kwargs: Other arguments of the four stages (none yet).

        Returns:
            dict: ``predictions``, one ``{task: dict or data sample}`` per
            image, and ``visualization``, one RGB array per image (empty
            unless drawn).
        """
        self._dispatch_kwargs(**kwargs)  # rejects unknown arguments
        tasks = self._check_tasks(tasks)
        ori_inputs = self._inputs_to_list(inputs)
        chunks = self.preprocess(ori_inputs, batch_size, tasks=tasks)
        results = dict(predictions=[], visualization=[])
        for ori_input, data in (track(chunks, description='Inference')
                                if self.show_progress else chunks):
            preds = self.forward(data, tasks=tasks)
            visualization = self.visualize([ori_input],
                                           preds,
                                           return_vis=return_vis,
                                           show=show,
                                           wait_time=wait_time,
                                           pred_score_thr=pred_score_thr,
                                           topk=topk,
                                           img_out_dir=out_dir,
                                           no_save_vis=no_save_vis)
            result = self.postprocess(
                preds,
                visualization,
                return_datasamples=return_datasamples,
                print_result=print_result,
                no_save_pred=no_save_pred,
                pred_out_dir=out_dir,
                topk=topk)
            results['predictions'].extend(result['predictions'])
            results['visualization'].extend(result['visualization'] or [])
        return results

    def preprocess(self,
                   inputs: list,
                   batch_size: int = 1,
                   tasks: Optional[Sequence[str]] = None,
                   **kwargs) -> Iterator[Tuple[InputType, dict]]:
        """Yield ``(input, data)`` per image, ``data`` from :meth:`pack`."""
        if batch_size != 1:
            raise ValueError('MultiTaskInferencer runs one image at a time '
                             f'(batch_size=1), but got {batch_size}')
        for item in inputs:
            yield item, self.pack(self.pipeline(item), tasks)

    def pack(self,
             results: dict,
             tasks: Optional[Sequence[str]] = None) -> dict:
        """Normalise and pad a loaded image once for all ``tasks``, as
        their data preprocessors would, and give each task a data sample.

        Args:
            results (dict): Output of the pipeline: ``img`` (BGR, HWC),
                ``ori_shape``, ``img_shape``, ``scale_factor`` (w, h)...
            tasks (Sequence[str], optional): Defaults to the default tasks.

        Returns:
            dict: ``inputs``, a (1, 3, H, W) tensor on the model's device,
            and ``data_samples``, ``{task: [data sample]}`` with the
            metainfo that the heads read.
        """
        tasks = self._check_tasks(tasks)
        norm = shared_normalization(self.normalizations, tasks)
        img = results['img']
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError('images must be H x W x 3 (BGR), but got shape '
                             f'{img.shape}')
        device = next(self.model.parameters()).device
        x, (h, w), (pad_h, pad_w) = normalize_and_pad(img, norm, device,
                                                      SIZE_DIVISOR)
        meta = dict(
            img_path=results.get('img_path'),
            ori_shape=tuple(results['ori_shape']),
            img_shape=(h, w),
            scale_factor=tuple(results.get('scale_factor', (1., 1.))),
            pad_shape=tuple(x.shape[-2:]),
            batch_input_shape=tuple(x.shape[-2:]),
            # mmseg crops its logits by it before resizing to ori_shape
            padding_size=[0, pad_w, 0, pad_h])
        samples = {
            task: [self.sample_types[task](metainfo=dict(meta, task=task))]
            for task in tasks
        }
        return dict(inputs=x[None], data_samples=samples)

    @torch.no_grad()
    def forward(self,
                inputs: dict,
                tasks: Optional[Sequence[str]] = None,
                **kwargs) -> List[PredType]:
        """Predictions of ``tasks`` on a packed batch, one
        ``{task: data sample}`` per image."""
        tasks = self._check_tasks(tasks)
        preds = self.predict_tasks(inputs['inputs'], inputs['data_samples'],
                                   tasks)
        return [{
            task: preds[task][i]
            for task in tasks
        } for i in range(len(inputs['inputs']))]

    @torch.no_grad()
    def predict_tasks(self, inputs: torch.Tensor, data_samples: Dict[str,
                                                                     list],
                      tasks: Sequence[str]) -> Dict[str, list]:
        """Each stage copy once, then each task model's own ``predict()``.

        Args:
            inputs (Tensor): The shared (N, 3, H, W) input.
            data_samples (dict[str, list]): Data samples by task.
            tasks (Sequence[str]): Tasks to run.

        Returns:
            dict[str, list]: The task models' data samples by task.
        """
        backbone = self.model.backbone
        feats = backbone.forward_tasks(inputs, tasks)
        with backbone.reuse_features(inputs, feats):
            return {
                task: self.model.tasks[task].predict(inputs,
                                                     data_samples[task])
                for task in tasks
            }

    def visualize(self,
                  inputs: list,
                  preds: List[PredType],
                  return_vis: bool = False,
                  show: bool = False,
                  wait_time: float = 0,
                  pred_score_thr: float = 0.3,
                  topk: int = 5,
                  img_out_dir: str = '',
                  no_save_vis: bool = False,
                  **kwargs) -> Optional[List[np.ndarray]]:
        """Draw all tasks' predictions on one picture per image, saved as
        ``img_out_dir/vis/<image>.png``.

        Returns:
            list[np.ndarray] | None: RGB pictures, or None if nothing is
            shown, saved or returned.
        """
        img_out_dir = '' if no_save_vis else img_out_dir
        first = self.num_visualized_imgs  # arrays are named by number
        self.num_visualized_imgs += len(inputs)
        if not (show or img_out_dir or return_vis):
            return None
        results = []
        for i, (single_input, pred) in enumerate(zip(inputs, preds)):
            image, name = load_rgb(single_input, first + i)
            drawn = self.draw(image, pred, pred_score_thr, topk)
            if show:
                # any visualiser shows a picture; take the last drawer's
                list(self.visualizer.values())[-1].show(
                    drawn, win_name=name, wait_time=wait_time)
            if img_out_dir:
                mmcv.imwrite(drawn[..., ::-1],
                             osp.join(img_out_dir, 'vis', f'{name}.png'))
            results.append(drawn)
        return results

    def draw(self,
             image: np.ndarray,
             pred: PredType,
             pred_score_thr: float = 0.3,
             topk: int = 5) -> np.ndarray:
        """One panel per task (:func:`~.drawing.draw_panels`): the image
        enlarged to at least :attr:`panel_size` pixels on its short side,
        each task's prediction drawn on its own copy by its library's
        visualiser, the task's name above; the kinds in their
        ``draw_order``, the tasks of one kind in ``pred``'s order."""

        def vis_meta(task: str, num_labels: int) -> dict:
            # classes and palette (the model's metainfo)
            return class_colours(
                self.model.dataset_meta.get(task) or {}, num_labels)

        return draw_panels(image, pred, self.visualizer, self.task_kinds,
                           vis_meta, self.panel_size, pred_score_thr, topk)

    def postprocess(self,
                    preds: List[PredType],
                    visualization: Optional[List[np.ndarray]] = None,
                    return_datasamples: bool = False,
                    print_result: bool = False,
                    no_save_pred: bool = False,
                    pred_out_dir: str = '',
                    topk: int = 5,
                    **kwargs) -> dict:
        """Data samples or JSON-friendly dicts (see :meth:`pred2dict`), and
        ``pred_out_dir/preds/<image>.json`` files.

        Returns:
            dict: ``predictions`` (one per image) and ``visualization``.
        """
        pred_out_dir = '' if no_save_pred else pred_out_dir
        first = self.num_predicted_imgs  # arrays are named by number
        self.num_predicted_imgs += len(preds)
        results = []
        for i, pred in enumerate(preds):
            as_dict = self.pred2dict(pred, pred_out_dir, topk, first + i) \
                if pred_out_dir or not return_datasamples else None
            results.append(pred if return_datasamples else as_dict)
        if print_result:
            print(results)
        return dict(predictions=results, visualization=visualization)

    def pred2dict(self,
                  pred: PredType,
                  pred_out_dir: str = '',
                  topk: int = 5,
                  index: int = 0) -> dict:
        """JSON-friendly predictions of one image, by task
        (:func:`~.outputs.pred_to_dict`), and with ``pred_out_dir``
        ``pred_out_dir/preds/<image>.json``.

        Args:
            index (int): Number of the image, its file name if it has no
                path. Defaults to 0.
        """
        return pred_to_dict(pred, self.task_kinds, self.model.dataset_meta,
                            pred_out_dir, topk, index)
