"""A decoder layer's norms left to the projection after them (PendingNorm, gemm.dense_rms):
where the backend serves gemm.dense_rms with a kernel of its own (xeon: its norm then its GEMM;
cuda: the norm inside the GEMV) a dense model's layers take that path, and its logits equal the
same model's with the fusion switched off (Linear.fuse_norm), prefill and decode, for a dense
model, a mixture of experts whose router keeps the normed row for the experts, and one with a
shared expert; on the reference backend (no kernel of its own) nothing changes. A W4A16 layer
(an AWQ checkpoint) takes gemm.int4_rms likewise: on xeon its logits equal the unfused ones, on
cuda (the norm inside the tensor-core GEMV at one row) they stay within the bfloat16 bound of
transformers on the dequantized weights, greedy tokens equal. Greedy tokens against
transformers on xeon, through the dense path, are tests/engine/test_parity.py's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from sglang.layers.linear import Linear
from tiny_models import save_tiny_model

sys.path.insert(0, str(Path(__file__).parents[1] / "layers" / "quantization"))
from quant_checkpoints import (  # noqa: E402
    backends,
    greedy_agrees,
    hf_logits,
    rel_rms,
    run_logits,
    save_float_llama,
)
from test_awq_gptq import write_awq  # noqa: E402

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


@pytest.mark.parametrize("backend", [b for b in backends() if b != "reference"])
def test_int4_layers_take_the_norm(tmp_path, backend, monkeypatch):
    """An AWQ checkpoint in bfloat16: qkv and gate_up (gemm.int4) run their norms inside
    gemm.int4_rms. xeon composes its own two kernels: logits equal the unfused path's. cuda
    (its table's switch on) fuses them at one row (decode): prefill is unchanged, decode differs from the unfused path
    by the bfloat16 rounding of the normed row only, and both stay within the bfloat16 bound
    of transformers on the dequantized weights, with greedy tokens equal."""
    from sglang.conformance.model import logits_bound

    if backend == "cuda":  # the fused kernel, off by default (docs/benchmarks.md: it lost)
        from sglang_cuda.kernels import gemv_int4_cuda

        monkeypatch.setitem(gemv_int4_cuda.GEMV_INT4_CUDA_LAUNCH, "rms", True)
    base = str(tmp_path / "float")
    path, dense = write_awq(str(tmp_path / "awq"), base, save_float_llama(base))
    prefill, decode, fed, runner = run_logits(path, backend, dtype="bfloat16")
    layers = _layers(runner)
    assert layers[0].self_attn.qkv_proj.gemm_op == "gemm.int4"
    assert layers[0].self_attn.qkv_proj.takes_pending_norm
    assert layers[0].mlp.gate_up_proj.takes_pending_norm
    assert all(layer.pending_norms() == (True, True) for layer in layers)
    monkeypatch.setattr(Linear, "fuse_norm", False)
    prefill_off, decode_off, fed_off, runner_off = run_logits(path, backend, dtype="bfloat16")
    assert all(layer.pending_norms() == (False, False) for layer in _layers(runner_off))
    if backend == "xeon":
        assert fed == fed_off
        torch.testing.assert_close(prefill, prefill_off, rtol=0, atol=0)
        torch.testing.assert_close(decode, decode_off, rtol=0, atol=0)
    bound = logits_bound(torch.bfloat16)
    for out_p, out_d, tokens in ((prefill, decode, fed), (prefill_off, decode_off, fed_off)):
        out, ref = torch.cat([out_p, out_d]), torch.cat(hf_logits(path, dense, tokens))
        assert rel_rms(out, ref) < bound, (rel_rms(out, ref), bound)
        checked, same = greedy_agrees(out, ref, float((out - ref).abs().max()))
        assert same == checked
