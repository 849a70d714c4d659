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

import kernel_checks as kc
import pytest
import torch
from sglang.backend.selection import Platform
from sglang.layers.ops_table import OpTable
from tiny_model_runs import ABS, MODULES, REL, kernel_logprobs, transformers_logprobs
from tiny_models import save_tiny_model  # on the path through tiny_model_runs


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    # scale 24 ** -0.5, not head_dim ** -0.5 = 0.25: the custom scale reaches the kernels
    return save_tiny_model(
        "gemma2", str(tmp_path_factory.mktemp("gemma2")), query_pre_attn_scalar=24
    )


@pytest.fixture(scope="module")
def found():
    return kc.reference_and_kernels(MODULES)


def drop_attention_softcap(model) -> None:
    for layer in model.model.layers:
        layer.self_attn.attn_logit_softcapping = None


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
    capped, uncapped = (
        transformers_logprobs(path),
        transformers_logprobs(path, drop_attention_softcap),
    )
    gap = (capped - uncapped).abs().max().item()
    assert gap > 10 * (ABS + REL * capped.abs().max().item()), gap


def test_gemma2_matches_transformers(found, path):
    got = kernel_logprobs(found, path, "gemma2 model test")[0]
    want = transformers_logprobs(path)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=ABS, rtol=REL)
