"""One dataset over the datasets of several tasks, keyed by task name."""
import bisect
import operator
from typing import Dict, List, Mapping, Tuple, Union

import numpy as np
from mmengine.dataset.base_dataset import force_full_init
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from torch.utils.data import Dataset

from mtl_pvt.registry import DATASETS
from mtl_pvt.structures import tag_task, to_plain_meta
from mtl_pvt.utils.randomness import seeded
from .sample_check import check_data_sample, dataset_limits, renamed_error


def _build_dataset(task: str, dataset: Union[dict, Dataset],
                   lazy_init: bool) -> Dataset:
    """Build one task's dataset; errors name the task."""
    if not isinstance(dataset, Mapping):
        return dataset
    cfg = dict(dataset)
    if lazy_init:
        # the wrapper's lazy_init would be void if the sub-dataset loaded
        # its annotations while being built
        cfg.setdefault('lazy_init', True)
    try:
        # the root registry resolves scope-prefixed types (mmdet.X) and
        # ``_scope_`` of every library, whatever the default scope
        return MMENGINE_DATASETS.build(cfg)
    except Exception as e:
        raise renamed_error(
            e, f'failed to build the dataset of task {task!r}: '
            f'{_explain(e, cfg)}') from e


def _explain(error: Exception, cfg: Mapping) -> str:
    """mmengine's words for an empty annotation list, made plain."""
    if 'need at least one array to concatenate' in str(error):
        where = cfg.get('ann_file') or cfg.get('data_prefix')
        return f'it has no samples ({cfg.get("data_root")}, {where})'
    return str(error)


def _file_of(dataset: Dataset, idx: int) -> str:
    """The image (or label) file of sample ``idx``, for messages."""
    try:
        info = dataset.get_data_info(idx)
    except Exception:
        return f'sample {idx}'
    for key in ('img_path', 'seg_map_path', 'img_id'):
        if info.get(key) is not None:
            return f'sample {idx} ({info[key]})'
    return f'sample {idx}'


@DATASETS.register_module()
class MultiTaskDataset(Dataset):
    """The datasets of several tasks in one index space.

    Each task's dataset is a standard one (mmpretrain ``ImageNet``, mmdet
    ``CocoDataset``, mmseg ``ADE20KDataset``...) with its own pipeline and
    Pack* transform. The global index space concatenates the tasks in the
    order of ``datasets``; an item is the sub-dataset's packed dict, its data
    sample carrying the task name in ``metainfo['task']``, which is how the
    model splits a mixed batch. An index with a ``seed`` (the
    :class:`~mtl_pvt.utils.randomness.SampleIndex` of
    ``MultiTaskBatchSampler``) runs the sample's pipeline with python's,
    numpy's and torch's generators seeded by it, and restored after: the
    augmentations do not depend on the worker, nor on the other tasks.

    Args:
        datasets (dict[str, dict | Dataset]): Task name -> dataset config
            (built with MMEngine's root ``DATASETS``, so scope-prefixed
            types such as ``'mmdet.CocoDataset'`` work) or dataset.
        lazy_init (bool): Whether to defer loading the annotations
            (``full_init``) of every sub-dataset until the sizes are needed.
            Defaults to False.
        check_samples (bool): Whether to check every packed sample's labels
            against its task's class range (ValueError naming the task,
            file and value; see :mod:`mtl_pvt.datasets.sample_check`).
            Errors while loading a sample name its task and file either
            way. Defaults to True.

    Examples:
        >>> dataset = dict(
        ...     type='MultiTaskDataset',
        ...     datasets=dict(cls=cls_train_dataloader['dataset'],
        ...                   det=det_train_dataloader['dataset'],
        ...                   seg=seg_train_dataloader['dataset']))
    """

    def __init__(self,
                 datasets: Dict[str, Union[dict, Dataset]],
                 lazy_init: bool = False,
                 check_samples: bool = True) -> None:
        if not isinstance(datasets, Mapping) or not datasets:
            raise ValueError('datasets must be a non-empty dict of task '
                             'name -> dataset config or dataset, but got '
                             f'{datasets!r}')
        self.datasets: Dict[str, Dataset] = {
            task: _build_dataset(task, dataset, lazy_init)
            for task, dataset in datasets.items()
        }
        self.check_samples = check_samples
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Fully initialise every sub-dataset and lay out the index space."""
        if self._fully_initialized:
            return
        for task, dataset in self.datasets.items():
            if hasattr(dataset, 'full_init'):
                try:
                    dataset.full_init()
                except Exception as e:
                    cfg = dict(
                        data_root=getattr(dataset, 'data_root', None),
                        ann_file=getattr(dataset, 'ann_file', None))
                    raise renamed_error(
                        e, f'failed to load the dataset of task {task!r}: '
                        f'{_explain(e, cfg)}') from e
        self._sizes = {t: len(d) for t, d in self.datasets.items()}
        empty = [t for t, n in self._sizes.items() if n == 0]
        if empty:
            raise ValueError(
                f'the dataset of task(s) {empty} has no samples: ' +
                ', '.join(f'{t}: {getattr(self.datasets[t], "ann_file", None)}'
                          for t in empty))
        self._limits = {t: dataset_limits(d) for t, d in self.datasets.items()}
        self._starts = np.cumsum([0, *self._sizes.values()]).tolist()
        self._fully_initialized = True

    @property
    def task_names(self) -> List[str]:
        """Task names, in the order of the index space."""
        return list(self.datasets)

    @property
    def metainfo(self) -> dict:
        """Task name -> that dataset's metainfo, as plain Python data."""
        return {
            task: to_plain_meta(getattr(dataset, 'metainfo', {}))
            for task, dataset in self.datasets.items()
        }

    @property
    @force_full_init
    def task_sizes(self) -> Dict[str, int]:
        """Task name -> number of samples of its dataset."""
        return dict(self._sizes)

    @property
    @force_full_init
    def task_offsets(self) -> Dict[str, int]:
        """Task name -> global index of its first sample."""
        return dict(zip(self.datasets, self._starts))

    @force_full_init
    def __len__(self) -> int:
        return self._starts[-1]

    @force_full_init
    def task_index(self, idx: int) -> Tuple[str, int]:
        """``(task, local index)`` of the global index ``idx``.

        Args:
            idx (int): Global index; negative counts from the end.

        Returns:
            tuple[str, int]: The task name and the index in its dataset.
        """
        idx = operator.index(idx)
        total = self._starts[-1]
        if not -total <= idx < total:
            raise IndexError(f'index {idx} is out of range for a '
                             f'MultiTaskDataset of {total} samples')
        idx %= total
        pos = bisect.bisect_right(self._starts, idx) - 1
        return self.task_names[pos], idx - self._starts[pos]

    @force_full_init
    def global_index(self, task: str, local: int) -> int:
        """Global index of sample ``local`` of ``task``'s dataset.

        Args:
            task (str): Task name.
            local (int): Index in the task's dataset.

        Returns:
            int: The index in this dataset.
        """
        if task not in self._sizes:
            raise KeyError(f'unknown task {task!r}; the tasks are '
                           f'{self.task_names}')
        local = operator.index(local)
        if not 0 <= local < self._sizes[task]:
            raise IndexError(f'local index {local} is out of range for '
                             f'task {task!r} of {self._sizes[task]} samples')
        return self.task_offsets[task] + local

    def get_data_info(self, idx: int) -> dict:
        """The sub-dataset's data info of ``idx``, with ``task`` added."""
        task, local = self.task_index(idx)
        return dict(self.datasets[task].get_data_info(local), task=task)

    def __getitem__(self, idx: int) -> dict:
        task, local = self.task_index(idx)
        dataset = self.datasets[task]
        seed = getattr(idx, 'seed', None)
        try:
            if seed is None:
                data = dataset[local]
            else:
                with seeded(seed):
                    data = dataset[local]
        except Exception as e:
            raise renamed_error(
                e, f'task {task!r}, {_file_of(dataset, local)}: '
                f'{type(e).__name__}: {e}') from e
        data = tag_task(data, task)
        if self.check_samples:
            samples = data['data_samples']
            for sample in samples if isinstance(samples, list) else [samples]:
                check_data_sample(sample, task, self._limits[task])
        return data
