"""gpt-oss end to end on the cuda backend's Triton attention (sinks, alternating sliding window)
and fused MoE (swigluoai, expert biases), in Triton's interpreter where there is no GPU.

The model-level conformance check (sglang.conformance.model: chunked prefill over a cached
prefix, decode steps, a shuffled paged cache, logits against the reference backend in float64)
over a tiny gpt-oss, on a backend "k" holding the cuda backend's attention and moe kernels
(registered as sglang_cuda registers them) and declaring the cuda backend's optional features;
every other op takes the reference kernel. The layers must resolve to the Triton kernels (not
the reference fallback of OpTable.kernel_needing) and pass the arguments as the kernels take
them (sinks, biases, q/k/v views)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang.backend.selection import Platform
from sglang.conformance import model as model_check
from sglang.conformance.runner import PASSED
from sglang.layers.ops_table import OpTable
from sglang_triton import attention, moe, moe_decode

# Two layers (sliding, then full), 4 experts top-2: transformers' gpt-oss.
GPT_OSS = (
    "GptOssConfig",
    "GptOssForCausalLM",
    {
        "head_dim": 16,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "sliding_window": 6,
        "layer_types": ["sliding_attention", "full_attention"],
    },
)


@pytest.fixture
def found(monkeypatch):
    monkeypatch.setitem(model_check.MODELS, "gpt-oss", GPT_OSS)
    # prefill chunks (26 and 29 tokens, top-2) through the aligned fused MoE, decode steps (3
    # tokens) through moe_decode's GEMVs
    monkeypatch.setattr(moe_decode, "MAX_PAIRS", 16)
    return kc.reference_and_kernels(("sglang_triton.attention", "sglang_triton.moe"))


def test_gpt_oss_layers_take_the_triton_kernels(found):
    ops = OpTable(Platform(found, found.backends["k"], "test"))
    sinks = ("attention:sinks",)
    assert ops.kernel_needing("attention.decode", sinks, {"sinks": True}) is attention.decode
    assert ops.kernel_needing("attention.extend", sinks, {"sinks": True}) is attention.extend
    assert ops.kernel_needing("moe.experts", ("moe:swigluoai", "moe:bias")) is moe.experts
    assert ops.kernel_name("moe.route") == "cuda.triton_moe_route"  # softmax top-k: one launch


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_gpt_oss_model_matches_the_reference(found, dtype):
    results = model_check.run_model_cases(found, found.backends["k"], "gpt-oss", dtype)
    for r in results.values():
        assert r.status == PASSED, f"{r.id}: {r.status}: {r.reason}"
