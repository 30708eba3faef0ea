"""Group a multi-task batch by task and preprocess each group."""
from collections import OrderedDict
from contextlib import nullcontext
from typing import Callable, Dict, Optional

from mmengine.model import BaseDataPreprocessor

from mtl_pvt.registry import MODELS
from mtl_pvt.structures import sample_task


@MODELS.register_module()
class MultiTaskDataPreprocessor(BaseDataPreprocessor):
    """Split a batch by task and run each task's own data preprocessor.

    The batch is what ``pseudo_collate`` makes of samples of several tasks:
    lists of inputs and data samples, each data sample carrying its task
    name in ``metainfo['task']`` (a model with one task also takes samples
    without it). Each group goes through the standard preprocessor of its
    task model (``ClsDataPreprocessor``, ``DetDataPreprocessor``,
    ``SegDataPreProcessor``...), which ``MultiTaskModel`` binds here.

    Returns of :meth:`forward`: ``dict(inputs={task: inputs},
    data_samples={task: data_samples}, batch_indices={task: [int]})``, tasks
    in order of first appearance, ``batch_indices`` holding each sample's
    position in the batch.
    """

    def __init__(self):
        super().__init__()
        self.task_preprocessors: Dict[str, BaseDataPreprocessor] = {}
        self.random_stream: Optional[Callable] = None

    def bind(self,
             preprocessors: Dict[str, BaseDataPreprocessor],
             random_stream: Optional[Callable] = None) -> None:
        """Use these preprocessors, owned by the task models.

        Args:
            preprocessors (dict): Task name -> its model's preprocessor.
            random_stream (callable, optional): ``random_stream('batch',
                task)`` is the context in which a training batch of
                ``task`` is preprocessed (batch augmentations such as
                mixup draw from it): ``MultiTaskModel.forward_stream``.
                Defaults to None (the global generators).
        """
        object.__setattr__(self, 'task_preprocessors', dict(preprocessors))
        object.__setattr__(self, 'random_stream', random_stream)

    def group(self, data: dict) -> Dict[str, dict]:
        """Split ``data`` into one ``pseudo_collate``-style dict per task."""
        inputs = data['inputs']
        samples = data.get('data_samples') or [None] * len(inputs)
        default = next(iter(self.task_preprocessors)) \
            if len(self.task_preprocessors) == 1 else None
        groups = OrderedDict()
        for index, (item, sample) in enumerate(zip(inputs, samples)):
            task = sample_task(sample, index, default)
            if task not in self.task_preprocessors:
                raise KeyError(f'data sample {index} belongs to task '
                               f'{task!r}, which the model does not have '
                               f'(tasks: {list(self.task_preprocessors)})')
            group = groups.setdefault(
                task, dict(inputs=[], data_samples=[], batch_indices=[]))
            group['inputs'].append(item)
            group['data_samples'].append(sample)
            group['batch_indices'].append(index)
        return groups

    def forward(self, data: dict, training: bool = False) -> dict:
        result = dict(inputs={}, data_samples={}, batch_indices={})
        for task, group in self.group(data).items():
            indices = group.pop('batch_indices')
            if all(s is None for s in group['data_samples']):
                group['data_samples'] = None
            with self.random_stream('batch', task) if training and \
                    self.random_stream else nullcontext():
                out = self.task_preprocessors[task](group, training)
            result['inputs'][task] = out['inputs']
            result['data_samples'][task] = out['data_samples']
            result['batch_indices'][task] = indices
        return result
