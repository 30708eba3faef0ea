"""Global average pooling that accepts a backbone's list of feature maps."""
from typing import Sequence, Tuple, Union

import torch
from mmpretrain.models.necks import GlobalAveragePooling

from mtl_pvt.registry import MODELS


@MODELS.register_module()
class ListGlobalAveragePooling(GlobalAveragePooling):
    """mmpretrain's ``GlobalAveragePooling`` for list outputs.

    mmdet's ``PyramidVisionTransformerV2.forward`` returns a ``list`` of
    NCHW maps, which mmpretrain's neck rejects (it takes a tuple or a
    tensor). This neck pools every map exactly like its parent and has no
    parameters, so a classifier built with it keeps the state dict of the
    plain mmpretrain model.

    Args:
        dim (int): Dimensions of each sample, 1, 2 or 3. Defaults to 2.
    """

    def forward(
        self, inputs: Union[Sequence[torch.Tensor], torch.Tensor]
    ) -> Union[Tuple[torch.Tensor, ...], torch.Tensor]:
        if isinstance(inputs, list):
            inputs = tuple(inputs)
        return super().forward(inputs)
