"""The backbone slot of a task model inside a ``MultiTaskModel``."""
from typing import Tuple

import torch
from mmengine.model import BaseModule

from mtl_pvt.registry import MODELS


@MODELS.register_module()
class TaskBackboneView(BaseModule):
    """Reads one task's features from a shared backbone it does not own.

    ``MultiTaskModel`` builds each task model (mmpretrain's
    ``ImageClassifier``, an mmdet detector, mmseg's ``EncoderDecoder``...)
    with this module as its backbone, then binds it to the model's
    ``SharedPVTv2``. The task model's own code (``extract_feat``) calls it as
    it would call its backbone. The shared backbone is held outside
    ``nn.Module``'s registry, so its parameters appear once in the state dict
    and the optimizer: under ``backbone.`` of the multi-task model.

    Args:
        task (str): The task whose path of the shared backbone to run.
    """

    def __init__(self, task: str):
        super().__init__()
        self.task = task
        self.shared = None

    def bind(self, shared: torch.nn.Module) -> None:
        """Read features from ``shared`` (kept unregistered)."""
        object.__setattr__(self, 'shared', shared)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        if self.shared is None:
            raise RuntimeError(f'the backbone view of task {self.task!r} is '
                               'not bound to a shared backbone')
        return self.shared(x, self.task)

    def extra_repr(self) -> str:
        return f'task={self.task!r}'
