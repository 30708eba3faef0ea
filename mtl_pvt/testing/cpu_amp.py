"""mmengine's mixed precision, run on the CPU for tests and dry runs.

mmengine's ``AmpOptimWrapper`` asserts that a GPU (or NPU, MLU, MUSA) is
present, builds a CUDA ``GradScaler`` (which disables itself without a
GPU), and its ``autocast`` allows only bfloat16 on the CPU. Inside
:func:`cpu_amp` all three are lifted: the wrappers build a CPU
``torch.amp.GradScaler`` and autocast the forward on the CPU with the
wrapper's ``dtype`` (float16 or bfloat16), so the mixed-precision
arithmetic that a GPU run does (loss scaling, unscaling, overflow skips,
the scale in the checkpoint) runs here. Nothing outside the context
changes; ``tools/train.py --amp`` keeps refusing a CPU-only machine.
"""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.runner import amp as runner_amp


def cpu_grad_scaler(**kwargs) -> torch.amp.GradScaler:
    """``torch.amp.GradScaler`` on the CPU (what the wrappers build)."""
    return torch.amp.GradScaler('cpu', **kwargs)


@contextmanager
def cpu_amp(dtype: Optional[torch.dtype] = torch.float16,
            autocast: bool = True) -> Iterator[None]:
    """Let ``AmpOptimWrapper`` and its subclasses run on the CPU.

    Args:
        dtype (torch.dtype, optional): The autocast dtype when the wrapper
            names none (its ``dtype`` argument wins). Defaults to float16.
        autocast (bool): Autocast the forward. False keeps it in the
            model's own precision, so only the loss scaling differs from a
            plain wrapper (an exact comparison). Defaults to True.
    """
    default = dtype

    @contextmanager
    def cpu_autocast(device_type=None,
                     enabled=True,
                     dtype=None,
                     cache_enabled=None):
        if not (autocast and enabled):
            yield
            return
        if cache_enabled is None:
            cache_enabled = torch.is_autocast_cache_enabled()
        with torch.autocast(
                'cpu', dtype=dtype or default, cache_enabled=cache_enabled):
            yield

    saved = (amp_optimizer_wrapper.is_cuda_available,
             amp_optimizer_wrapper.GradScaler, runner_amp.autocast)
    amp_optimizer_wrapper.is_cuda_available = lambda: True
    amp_optimizer_wrapper.GradScaler = cpu_grad_scaler
    runner_amp.autocast = cpu_autocast
    try:
        yield
    finally:
        (amp_optimizer_wrapper.is_cuda_available,
         amp_optimizer_wrapper.GradScaler, runner_amp.autocast) = saved
