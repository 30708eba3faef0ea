"""A DistributedDataParallel wrapper that also wraps CPU modules."""
import torch.nn as nn
from mmengine.model import MMDistributedDataParallel

from mtl_pvt.registry import MODEL_WRAPPERS


def _on_cpu(module: nn.Module) -> bool:
    """Whether all parameters and buffers of ``module`` live on the CPU."""
    tensors = list(module.parameters()) + list(module.buffers())
    return all(tensor.device.type == 'cpu' for tensor in tensors)


@MODEL_WRAPPERS.register_module()
class MMCPUDistributedDataParallel(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` that also wraps CPU modules.

    ``Runner.wrap_model`` always passes ``device_ids=[LOCAL_RANK]`` to a
    DistributedDataParallel subclass, and torch rejects ``device_ids`` for
    a module on the CPU. For a CPU module this wrapper drops
    ``device_ids`` and ``output_device`` (DDP then runs on the module's
    device, e.g. with the gloo backend); for a module on an accelerator it
    is exactly :class:`MMDistributedDataParallel`.

    With ``MultiTaskOptimWrapper`` it hands the step to
    ``MultiTaskModel.train_step`` (with itself, whose forward a joint step
    runs through); one task at a time (``task_by_task=True``) bypasses
    DDP's forward and reducer: that optimiser wrapper then averages the
    gradients over the ranks itself, once.

    Args:
        module (nn.Module): Model to wrap.
        detect_anomalous_params (bool): See
            :class:`MMDistributedDataParallel`. Defaults to False.
        **kwargs: Keyword arguments of ``DistributedDataParallel``.
    """

    def __init__(self,
                 module: nn.Module,
                 detect_anomalous_params: bool = False,
                 **kwargs) -> None:
        if _on_cpu(module):
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        super().__init__(
            module=module,
            detect_anomalous_params=detect_anomalous_params,
            **kwargs)

    def train_step(self, data, optim_wrapper):
        """``MultiTaskModel.train_step`` through this wrapper with a
        ``MultiTaskOptimWrapper`` (its one path for joint and
        one-task-at-a-time steps), else DDP's own."""
        if hasattr(optim_wrapper, 'update_tasks'):
            return self.module.train_step(data, optim_wrapper, ddp=self)
        return super().train_step(data, optim_wrapper)
