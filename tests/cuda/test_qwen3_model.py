"""Tiny Qwen3 end to end on the cuda backend's Triton kernels against transformers, in float32
at test_parity's tolerance, on the GPU when there is one and otherwise in Triton's interpreter.

Qwen3 RMS-norms every query and key head before rope; with LlamaAttention.fuse_qk_norm, on a
backend with rope.qk_norm, the layer runs the two norms and rope as that one kernel (the
reference backend keeps the separate ops); both ways are checked.
A 16-token prompt runs as two prefill chunks and three decode steps; every row's
log-probabilities must match transformers' (eager attention, tiny_models.hf_model)."""

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
    return save_tiny_model("qwen3", str(tmp_path_factory.mktemp("qwen3")))


@pytest.fixture(scope="module")
def found():
    return kc.reference_and_kernels(MODULES)


def transformers_logprobs(path: str) -> torch.Tensor:
    with torch.no_grad():
        logits = hf_model(path)(torch.tensor([PROMPT])).logits[0]
    return torch.log_softmax(logits.double(), -1)


def kernel_logprobs(found, path: str) -> tuple[torch.Tensor, list[bool]]:
    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    platform = Platform(found, found.backends["k"], "qwen3 model test")
    ops = OpTable(platform)
    dev, dtype = platform.runtime.device, torch.float32
    built = model_check.Built(None, dev, dtype, platform.runtime)
    rows = []
    with torch.inference_mode():
        built.model = get_model_class(config.architectures)(config, ops, dtype, dev).eval()
        built.model.load_weights(load_file(f"{path}/model.safetensors").items())
        prepare_linear_layers(built.model, None)
        fused = [layer.self_attn.fused_qk_norm for layer in built.model.model.layers]
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
    return torch.log_softmax(torch.cat(rows), -1), fused


@pytest.mark.parametrize("fuse", [True, False])
def test_qwen3_matches_transformers(found, path, monkeypatch, fuse):
    from sglang_models.llama import LlamaAttention

    monkeypatch.setattr(LlamaAttention, "fuse_qk_norm", fuse)
    (got, fused), want = kernel_logprobs(found, path), transformers_logprobs(path)
    assert fused == [fuse] * len(fused) and fused
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=ABS, rtol=REL)
