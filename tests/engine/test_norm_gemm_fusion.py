"""A decoder layer's norms left to the projection after them (PendingNorm, gemm.dense_rms):
where the backend serves gemm.dense_rms with a kernel of its own (xeon: its norm then its GEMM;
cuda: the norm inside the GEMV) a dense model's layers take that path, and its logits equal the
same model's with the fusion switched off (Linear.fuse_norm), prefill and decode, for a dense
model, a mixture of experts whose router keeps the normed row for the experts, and one with a
shared expert; on the reference backend (no kernel of its own) and for a quantized layer
nothing changes. Greedy tokens against transformers on xeon, through this path, are
tests/engine/test_parity.py's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from sglang.layers.linear import Linear
from tiny_models import save_tiny_model

sys.path.insert(0, str(Path(__file__).parents[1] / "layers" / "quantization"))
from quant_checkpoints import run_logits  # noqa: E402

ARCHS = ("llama", "qwen3-moe", "qwen2-moe")


def _layers(runner):
    return list(runner.model.model.layers)


@pytest.mark.parametrize("arch", ARCHS)
def test_fused_path_taken_and_logits_unchanged(tmp_path, arch, monkeypatch):
    path = save_tiny_model(arch, str(tmp_path / arch))
    prefill, decode, fed, runner = run_logits(path, backend="xeon")
    pending = [layer.pending_norms() for layer in _layers(runner)]
    assert all(p == (True, True) for p in pending), pending
    assert runner.model.model.layers[0].self_attn.qkv_proj.takes_pending_norm
    monkeypatch.setattr(Linear, "fuse_norm", False)
    prefill_off, decode_off, fed_off, runner_off = run_logits(path, backend="xeon")
    assert all(layer.pending_norms() == (False, False) for layer in _layers(runner_off))
    assert fed == fed_off
    torch.testing.assert_close(prefill, prefill_off, rtol=0, atol=0)
    torch.testing.assert_close(decode, decode_off, rtol=0, atol=0)


def test_reference_backend_keeps_the_two_ops(tmp_path):
    """The reference backend's gemm.dense_rms is the spec's composition, not a kernel of its
    own: layers keep the norm's launch (nothing to save)."""
    path = save_tiny_model("llama", str(tmp_path / "llama"))
    *_, runner = run_logits(path, backend="reference")
    assert all(layer.pending_norms() == (False, False) for layer in _layers(runner))
