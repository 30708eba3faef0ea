"""Memory of a training step, counted on any device (the CPU included).

A step's peak is about its *state* (weights, their gradients, AdamW's two
moments: four copies of the parameters) plus the *activations* autograd
keeps from the forward for the backward. The activations are counted
exactly, as the bytes of the distinct storages that autograd saves
(``torch.autograd.graph.saved_tensors_hooks``), so they can be measured on
the CPU at the real input shapes, one image per task where a batch does
not fit, and scaled linearly with the batch. Not counted: the backward's
transient buffers, the allocator's fragmentation and cuDNN workspaces;
``benchmarks/gpu_check.py`` reports this estimate next to
``torch.cuda.max_memory_allocated`` so that a device run says how far
apart they are.
"""
from typing import Dict, Mapping

import torch
import torch.nn as nn


class SavedActivations:
    """Counts the bytes of the distinct storages autograd saves within
    the context (``bytes``; ``tensors``: how many were saved), leaving out
    the storages of ``model``'s parameters and buffers (views of weights
    that a backward needs are state, not activations)."""

    def __init__(self, model: nn.Module):
        self.bytes = 0
        self.tensors = 0
        self._seen = {
            t.untyped_storage().data_ptr()
            for t in list(model.parameters()) + list(model.buffers())
        }

    def _pack(self, tensor: torch.Tensor):
        self.tensors += 1
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self._seen:
            self._seen.add(storage.data_ptr())
            self.bytes += storage.nbytes()
        return tensor

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(
            self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)


def state_bytes(model: nn.Module, optimizer_copies: int = 2) -> int:
    """Weights, their gradients and ``optimizer_copies`` per parameter
    (AdamW: 2), in the parameters' own dtype, plus the buffers."""
    params = sum(p.numel() * p.element_size() for p in model.parameters()
                 if p.requires_grad)
    frozen = sum(p.numel() * p.element_size() for p in model.parameters()
                 if not p.requires_grad)
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return params * (2 + optimizer_copies) + frozen + buffers


def step_activation_bytes(model: nn.Module, data: dict) -> int:
    """The activations autograd keeps for one forward and loss of
    ``model`` on ``data`` (a collated batch, before the preprocessor)."""
    model.train()
    processed = model.data_preprocessor(data, True)
    with SavedActivations(model) as saved:
        losses = model(**processed, mode='loss')
        loss, _ = model.parse_losses(losses)
    del loss, losses
    return saved.bytes


def joint_step_memory(model: nn.Module, images: Mapping[str, dict],
                      batch_sizes: Mapping[str, int]) -> Dict[str, float]:
    """Bytes of a joint step: ``state`` (:func:`state_bytes`), each task's
    activations measured on ``images[task]`` (a batch of one image, before
    the preprocessor) times its ``batch_sizes[task]``, and the ``total``.
    The tasks' activations add up: each task runs on its own images."""
    out = dict(state=float(state_bytes(model)))
    for task, data in images.items():
        out[task] = float(batch_sizes[task] *
                          step_activation_bytes(model, data))
    out['total'] = sum(out.values())
    return out
