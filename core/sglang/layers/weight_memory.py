"""What a model's weights hold in memory: its parameters and the weight arguments its layers'
kernels prepared (often the parameters themselves, detached), each storage counted once."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def tensors_in(value: Any):
    """The tensors inside a kernel's prepared weight arguments (dicts, tuples, lists of them;
    a prepared NamedTuple is a tuple)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors_in(v)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from tensors_in(v)


def weight_bytes(model: nn.Module) -> int:
    """Bytes held by the model's parameters and its linear layers' prepared weights, each
    storage counted once (a prepared weight is often the parameter itself, detached: another
    tensor object over the same memory)."""
    tensors = list(model.parameters())
    for m in model.modules():
        if hasattr(m, "prepared_tensors"):  # Linear, FusedMoE
            tensors += m.prepared_tensors()
    held: dict[int, int] = {}
    for t in tensors:
        try:
            storage = t.untyped_storage()
            held[storage.data_ptr()] = storage.nbytes()
        except (NotImplementedError, RuntimeError):  # opaque tensors (prepacked): no storage
            held[id(t)] = t.numel() * t.element_size()
    return sum(held.values())
