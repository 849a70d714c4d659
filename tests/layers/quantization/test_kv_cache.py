"""--kv-cache-dtype fp8_e4m3 / fp8_e5m2: the cache holds k / k_scale and v / v_scale in the fp8
type, attention reads them back scaled; per-layer scales come from the checkpoint where it has
them. Checked on the reference backend (the one whose capabilities take a quantized cache)
against transformers with a float cache, within the bound the type's rounding explains; a
backend without the capability refuses it by name."""

from __future__ import annotations

import pytest
import torch
from quant_checkpoints import (
    activation_quant_bound,
    greedy_agrees,
    hf_logits,
    rel_rms,
    run_logits,
    save_float_llama,
    save_quantized,
)
from sglang.layers.quantization.errors import QuantizationError

MANTISSA = {"fp8_e4m3": 3, "fp8_e5m2": 2}
ROUNDED_PER_TOKEN = 2 * 2  # K and V, two layers


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("float"))
    return path, save_float_llama(path)


@pytest.mark.parametrize("kv", ["fp8_e4m3", "fp8_e5m2"])
def test_fp8_cache_stays_within_its_rounding(float_model, kv):
    path, state = float_model
    prefill, decode, fed, runner = run_logits(path, "reference", kv_cache_dtype=kv)
    assert (
        runner.kv_cache.k_buffer(0).dtype
        == {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}[kv]
    )
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, state, fed))
    err = rel_rms(out, ref)
    assert 0 < err < activation_quant_bound(MANTISSA[kv], ROUNDED_PER_TOKEN), err
    # Away from near-ties: rows whose top-2 margin exceeds 4x the typical (RMS) logit error.
    checked, same = greedy_agrees(out, ref, float((out - ref).pow(2).mean().sqrt()))
    assert checked >= 1 and same == checked, (checked, same)


def with_kv_scales(tmp_path, float_model, scale: float, name="self_attn.k_proj.k_scale"):
    base, state = float_model
    tensors = dict(state)
    for layer in range(2):
        tensors[f"model.layers.{layer}.{name}"] = torch.tensor(scale)
        tensors[f"model.layers.{layer}.{name.replace('k_', 'v_')}"] = torch.tensor(scale * 2)
    return save_quantized(str(tmp_path), tensors, None, base=base), state


@pytest.mark.parametrize("name", ["self_attn.k_proj.k_scale", "self_attn.k_scale"])
def test_checkpoint_scales_are_used(tmp_path, float_model, name):
    path, state = with_kv_scales(tmp_path, float_model, 0.01, name)
    prefill, decode, fed, runner = run_logits(path, "reference", kv_cache_dtype="fp8_e4m3")
    attn = runner.model.model.layers[1].self_attn.attn
    assert attn.kv_kwargs == {"k_scale": pytest.approx(0.01), "v_scale": pytest.approx(0.02)}
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, state, fed))
    assert rel_rms(out, ref) < activation_quant_bound(3, ROUNDED_PER_TOKEN)
    # A scale far too small saturates every value at 448 * scale: the scale is really applied.
    path, _ = with_kv_scales(tmp_path / "tiny", float_model, 1e-5, name)
    prefill, decode, fed, _ = run_logits(path, "reference", kv_cache_dtype="fp8_e4m3")
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, state, fed))
    assert rel_rms(out, ref) > 0.3


def test_auto_cache_ignores_checkpoint_scales(tmp_path, float_model):
    path, state = with_kv_scales(tmp_path, float_model, 1e-5)
    prefill, decode, fed, runner = run_logits(path, "reference")
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, state, fed))
    assert rel_rms(out, ref) < 1e-5


def test_backend_without_the_capability_refuses(float_model):
    with pytest.raises(
        QuantizationError,
        match=(
            "--kv-cache-dtype fp8_e5m2 needs kv_cache:fp8_e5m2, which backend 'xeon' does not have"
        ),
    ):
        run_logits(float_model[0], "xeon", kv_cache_dtype="fp8_e5m2")


def test_reference_attention_serves_an_fp8_cache_for_xeon(float_model):
    path, state = float_model
    prefill, decode, fed, runner = run_logits(
        path, "xeon", kv_cache_dtype="fp8_e4m3", attention_backend="reference"
    )
    assert runner.ops.choices["kv.store"].startswith("reference.")
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, state, fed))
    assert rel_rms(out, ref) < activation_quant_bound(3, ROUNDED_PER_TOKEN)
