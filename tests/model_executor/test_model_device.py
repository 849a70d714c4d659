"""Every architecture builds its parameters and buffers on the device it is given: a tensor left
on the host (made without `device=`) is copied to the GPU at every call by the reference
kernels and refused by a backend's own kernels (gpt-oss's sinks were, on cuda: "Pointer
argument cannot be accessed from Triton (cpu tensor?)"). Built on the meta device, where
nothing is allocated, every tiny architecture of the parity tests."""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "engine"))
from tiny_models import configs  # noqa: E402


@pytest.mark.parametrize("name", sorted(configs()))
def test_model_tensors_live_on_the_given_device(name):
    from sglang.backend.selection import select_platform
    from sglang.layers.ops_table import OpTable
    from sglang.model_executor.model_registry import get_model_class
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = configs()[name]
    cls = get_model_class([MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config.model_type]])
    ops = OpTable(select_platform("reference"))
    meta = torch.device("meta")
    with torch.inference_mode():
        model = cls(config, ops, torch.float32, meta)
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    assert tensors
    off = [n for n, t in tensors if t.device != meta]
    assert not off, f"{name}: made off the model's device: {off[:8]}"
