"""Tiny Gemma 2 end to end on the cuda backend's Triton kernels against transformers, in float32
at test_parity's tolerance, on the GPU when there is one and otherwise in Triton's interpreter.

Gemma 2 is the one model that takes the attention kernels' logit soft-cap, and with it a custom
scale (query_pre_attn_scalar, set here apart from head_dim), a sliding window on even layers,
(1 + w) RMSNorms, gelu-tanh, the scaled embedding and the final soft-cap. A 16-token prompt
(twice the window) runs as two prefill chunks (the second attends to the first through the
cache) and three decode steps; every row's log-probabilities must match transformers' (eager
attention, tiny_models.hf_model). The reference is checked too: with the attention soft-cap
switched off transformers must move by more than the tolerance, so a reference (or a kernel)
that drops the soft-cap cannot pass: transformers 5.17's default SDPA path for Gemma 2 does,
and the parity test compared the engine with it on the GPU image."""

from __future__ import annotations

import sys
from pathlib import Path

import kernel_checks as kc
import pytest
import torch
from sglang.backend.selection import Platform
from sglang.conformance import model as model_check
from sglang.forward_batch import ForwardMode
from sglang.layers.linear import prepare_linear_layers
from sglang.layers.ops_table import OpTable
from sglang.mem.kv_cache import KVCache
from sglang.model_executor.model_registry import get_model_class

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from tiny_models import hf_model, save_tiny_model  # noqa: E402

MODULES = (
    "sglang_triton.norm",
    "sglang_triton.activation",
    "sglang_triton.rope",
    "sglang_triton.kv",
    "sglang_triton.attention",
    "sglang_triton.dense",
)
PROMPT = [1, 17, 33, 250, 99, 7, 412, 5, 300, 301, 302, 44, 123, 9, 480, 61]
CHUNKS = (6, 13)  # prefill [0, 6), then [6, 13) over the cached 6; decode the last 3 one by one
ABS, REL = 2e-4, 1e-4  # test_parity's


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    # scale 24 ** -0.5, not head_dim ** -0.5 = 0.25: the custom scale reaches the kernels
    return save_tiny_model(
        "gemma2", str(tmp_path_factory.mktemp("gemma2")), query_pre_attn_scalar=24
    )


@pytest.fixture(scope="module")
def found():
    return kc.reference_and_kernels(MODULES)


def transformers_logprobs(path: str, softcap: bool = True) -> torch.Tensor:
    model = hf_model(path)
    if not softcap:
        for layer in model.model.layers:
            layer.self_attn.attn_logit_softcapping = None
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([PROMPT])).logits[0].double(), -1)


def kernel_logprobs(found, path: str) -> torch.Tensor:
    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    platform = Platform(found, found.backends["k"], "gemma2 model test")
    ops = OpTable(platform)
    dev, dtype = platform.runtime.device, torch.float32
    built = model_check.Built(None, dev, dtype, platform.runtime)
    rows = []
    with torch.inference_mode():
        built.model = get_model_class(config.architectures)(config, ops, dtype, dev).eval()
        built.model.load_weights(load_file(f"{path}/model.safetensors").items())
        prepare_linear_layers(built.model, None)
        hd = config.head_dim
        cache = KVCache(
            config.num_hidden_layers, 64, config.num_key_value_heads, hd, hd, dtype, dev
        )
        slots = model_check.page_slots([len(PROMPT)], seed=3)
        steps = [(0, CHUNKS[0]), CHUNKS] + [(i, i + 1) for i in range(CHUNKS[1], len(PROMPT))]
        for start, end in steps:
            mode = ForwardMode.EXTEND if end - start > 1 else ForwardMode.DECODE
            seqs = [(PROMPT[start:end], start)]
            batch = model_check.forward_batch(mode, built, cache, seqs, slots, all_rows=True)
            rows.append(built.model(batch).to("cpu", torch.float64))
    return torch.log_softmax(torch.cat(rows), -1)


def test_gemma2_layers_take_the_triton_kernels(found):
    ops = OpTable(Platform(found, found.backends["k"], "test"))
    for op, kernel in (
        ("attention.extend", "cuda.triton_extend"),
        ("attention.decode", "cuda.triton_decode"),
        ("act.gelu_mul", "cuda.triton_gelu_mul"),
        ("norm.rms", "cuda.triton_rms_norm"),
    ):
        assert ops.kernel_name(op) == kernel


def test_the_reference_applies_the_attention_softcap(path):
    capped, uncapped = transformers_logprobs(path), transformers_logprobs(path, softcap=False)
    gap = (capped - uncapped).abs().max().item()
    assert gap > 10 * (ABS + REL * capped.abs().max().item()), gap


def test_gemma2_matches_transformers(found, path):
    got, want = kernel_logprobs(found, path), transformers_logprobs(path)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=ABS, rtol=REL)
