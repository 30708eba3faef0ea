"""The inferencer's weights and class names by task."""
import copy
import warnings
from typing import Optional

import mmengine
import torch.nn as nn
from mmengine.registry import DATASETS
# private, but what mmengine's BaseInferencer loads a checkpoint with (the
# state dict already read, the key prefixes and metadata handled alike)
from mmengine.runner.checkpoint import _load_checkpoint_to_model


def config_metainfo(cfg: mmengine.Config, task: str) -> dict:
    """Metainfo of ``task``'s test dataset (built lazily, no data read),
    or ``{}`` with a warning."""
    try:
        dataset = copy.deepcopy(cfg.test_dataloader[task].dataset)
        dataset['lazy_init'] = True
        return dict(DATASETS.build(dataset).metainfo)
    except Exception as e:  # any dataset may fail in its own way
        warnings.warn(f'No class names for task {task!r}: the config '
                      f'has no usable test dataset for it ({e!r})')
        return {}


def load_weights_and_metas(model: nn.Module, checkpoint: Optional[dict],
                           cfg: mmengine.Config) -> None:
    """Load the weights, and the class names by task into
    ``model.dataset_meta``: those that the checkpoint saved (its
    ``meta.dataset_meta``, by task as ``MultiTaskDataset`` gives it), else
    those of the config's test datasets."""
    if checkpoint is not None:
        _load_checkpoint_to_model(model, checkpoint)
    else:
        warnings.warn('No weights are loaded: the predictions come from '
                      'a randomly initialised model.')
    saved = ((checkpoint or {}).get('meta') or {}).get('dataset_meta')
    saved = saved if isinstance(saved, dict) else {}
    model.dataset_meta = {}
    for task in model.task_names:
        meta = saved.get(task)
        if not isinstance(meta, dict):
            meta = config_metainfo(cfg, task)
        model.dataset_meta[task] = {k.lower(): v for k, v in meta.items()}
