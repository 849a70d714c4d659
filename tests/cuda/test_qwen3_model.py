"""Tiny Qwen3 end to end on the cuda backend's Triton kernels against transformers, in float32
at test_parity's tolerance, on the GPU when there is one and otherwise in Triton's interpreter.

Qwen3 RMS-norms every query and key head before rope; with LlamaAttention.fuse_qk_norm, on a
backend with rope.qk_norm, the layer runs the two norms and rope as that one kernel (the
reference backend keeps the separate ops), and with fuse_kv_store (rope.kv_store) the KV store
too; every combination is checked.
A 16-token prompt runs as two prefill chunks and three decode steps; every row's
log-probabilities must match transformers' (eager attention, tiny_models.hf_model)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from tiny_model_runs import ABS, MODULES, REL, kernel_logprobs, transformers_logprobs
from tiny_models import save_tiny_model  # on the path through tiny_model_runs


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    return save_tiny_model("qwen3", str(tmp_path_factory.mktemp("qwen3")))


@pytest.fixture(scope="module")
def found():
    return kc.reference_and_kernels(MODULES)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("store", [True, False])
def test_qwen3_matches_transformers(found, path, monkeypatch, fuse, store):
    """fuse: rope.qk_norm; store: rope.kv_store (the norms, rope and the KV store in one
    kernel, which then takes precedence over rope.qk_norm)."""
    from sglang_models.llama import LlamaAttention

    monkeypatch.setattr(LlamaAttention, "fuse_qk_norm", fuse)
    monkeypatch.setattr(LlamaAttention, "fuse_kv_store", store)
    got, model = kernel_logprobs(found, path, "qwen3 model test")
    fused = [layer.self_attn.fused_qk_norm for layer in model.model.layers]
    assert fused == [fuse] * len(fused) and fused
    assert all(layer.self_attn.fused_kv_store == store for layer in model.model.layers)
    want = transformers_logprobs(path)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=ABS, rtol=REL)
