"""AWQ (GEMM packing, zero points) and GPTQ (4 and 8 bits, symmetric and asymmetric,
act-order) checkpoints, written with the publishers' packing code (int_writers), on the
reference and xeon backends against transformers running the dequantized weights.

Weight-only formats dequantize exactly (codes, zeros and float16 scales are exact in float32),
so in float32 the engine and transformers differ only by float32 summation order: relative
RMS ~1e-6, bound 1e-4. In bfloat16 the serving rounding is bounded as the conformance model
check derives it (sglang.conformance.model.logits_bound).
"""

from __future__ import annotations

import pytest
import torch
from int_writers import dequantize, pack_awq, pack_gptq, quantize_groups
from quant_checkpoints import (
    backends,
    greedy_agrees,
    hf_logits,
    is_projection,
    rel_rms,
    run_logits,
    save_float_llama,
    save_quantized,
)

BACKENDS = backends()
FLOAT32_BOUND = 1e-4


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("float"))
    return path, save_float_llama(path)


def write_awq(path, base, state, group=32):
    tensors, dense = {}, {}
    for name, w in state.items():
        if not is_projection(name):
            tensors[name] = dense[name] = w
            continue
        intweight, zeros, scales, g_idx = quantize_groups(w, group, 4, sym=False)
        prefix = name.removesuffix(".weight")
        tensors[f"{prefix}.qweight"], tensors[f"{prefix}.qzeros"] = pack_awq(intweight, zeros)
        tensors[f"{prefix}.scales"] = scales
        dense[name] = dequantize(intweight, zeros, scales, g_idx)
    config = {
        "quant_method": "awq",
        "bits": 4,
        "group_size": group,
        "zero_point": True,
        "version": "gemm",
        "modules_to_not_convert": None,
    }
    return save_quantized(path, tensors, config, base=base), dense


def write_gptq(path, base, state, bits=4, sym=True, desc_act=False, group=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    tensors, dense, perms = {}, {}, {}
    for name, w in state.items():
        if not is_projection(name):
            tensors[name] = dense[name] = w
            continue
        k = w.shape[1]
        g_idx = None
        if desc_act:  # GPTQ's g_idx = [perm[i] // group ...][invperm]; the order comes from
            # the input's Hessian, so projections of one input (q/k/v, gate/up) share it
            layer_input = name.rsplit(".", 2)[0]  # model.layers.0.self_attn / .mlp
            layer_input += ".down" if "down_proj" in name else ".o" if "o_proj" in name else ""
            if layer_input not in perms:
                perms[layer_input] = torch.randperm(k, generator=gen)
            g_idx = torch.empty(k, dtype=torch.long)
            g_idx[perms[layer_input]] = torch.arange(k) // group
        intweight, zeros, scales, g_idx = quantize_groups(w, group, bits, sym, g_idx)
        prefix = name.removesuffix(".weight")
        qweight, qzeros = pack_gptq(intweight, zeros, bits)
        tensors[f"{prefix}.qweight"], tensors[f"{prefix}.qzeros"] = qweight, qzeros
        tensors[f"{prefix}.scales"], tensors[f"{prefix}.g_idx"] = scales, g_idx
        dense[name] = dequantize(intweight, zeros, scales, g_idx)
    config = {
        "quant_method": "gptq",
        "bits": bits,
        "group_size": group,
        "desc_act": desc_act,
        "sym": sym,
        "checkpoint_format": "gptq",
        "static_groups": False,
    }
    return save_quantized(path, tensors, config, base=base), dense


def check(path, dense, backend):
    prefill, decode, fed, runner = run_logits(path, backend)
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, dense, fed))
    assert rel_rms(out, ref) < FLOAT32_BOUND, rel_rms(out, ref)
    checked, same = greedy_agrees(out, ref, float((out - ref).abs().max()))
    assert checked == len(out) and same == checked
    return runner


@pytest.mark.parametrize("backend", BACKENDS)
def test_awq(tmp_path, float_model, backend):
    path, dense = write_awq(str(tmp_path), *float_model)
    runner = check(path, dense, backend)
    assert runner.layer_methods["mlp.gate_up_proj"].startswith(
        "awq (4-bit, group 32) via gemm.int4"
    )


@pytest.mark.parametrize(
    "bits,sym,desc_act",
    [
        (4, True, False),
        (4, False, False),
        (4, True, True),
        (4, False, True),
        (8, True, False),
        (8, False, True),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gptq(tmp_path, float_model, backend, bits, sym, desc_act):
    path, dense = write_gptq(str(tmp_path), *float_model, bits=bits, sym=sym, desc_act=desc_act)
    runner = check(path, dense, backend)
    op = "gemm.int4" if bits == 4 else "gemm.dense"
    assert f"via {op}" in runner.layer_methods["self_attn.qkv_proj"]


def test_awq_in_bfloat16_keeps_greedy_tokens(tmp_path, float_model):
    from sglang.conformance.model import logits_bound

    path, dense = write_awq(str(tmp_path), *float_model)
    prefill, decode, fed, _ = run_logits(path, "xeon", dtype="bfloat16")
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, dense, fed))
    assert rel_rms(out, ref) < logits_bound(torch.bfloat16)
    checked, same = greedy_agrees(out, ref, float((out - ref).abs().max()))
    assert same == checked
