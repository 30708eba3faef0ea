"""The one way the tools build a config's model without any checkpoint."""
import copy
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope


def build_model_from_config(config: Union[str, Config],
                            cfg_options: Optional[dict] = None) -> nn.Module:
    """Build ``config``'s ``model`` (multi- or single-task) under its
    ``default_scope``, with no pretrained weights: the backbone's
    ``init_cfg`` is dropped (nothing is downloaded) and ``init_weights()``
    is not called, so the weights are those of the constructors.

    Args:
        config (str | Config): A config (file); not modified.
        cfg_options (dict, optional): Overrides merged into a copy first
            (as ``--cfg-options``). Defaults to None.

    Returns:
        nn.Module: The model, in training mode, on the CPU.
    """
    from mtl_pvt.utils.setup_env import register_all_modules
    cfg = Config.fromfile(config) if not isinstance(config, Config) \
        else copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = copy.deepcopy(cfg.model)
    if 'backbone' in model_cfg:
        model_cfg.backbone.init_cfg = None
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mtl_pvt')):
        return MODELS.build(model_cfg)
