"""NVIDIA ModelOpt exports (hf_quant_config.json beside a config.json without
quantization_config): FP8 (per-tensor weights, static input scales) and NVFP4, on the
reference and xeon backends against transformers on the dequantized weights.

nvidia-modelopt does not install here (CUDA stack), so the writer follows its published
recipe (modelopt/torch/quantization/qtensor/nvfp4_tensor.py, restated in sglang.ops.quant.fp4):
weight_scale_2 = amax / (6 * 448) (fused projections share the largest amax, as ModelOpt's
export unifies them), block scale = block amax / (6 * weight_scale_2) in e4m3, codes the nearest
e2m1 values; packing and unpacking are compressed-tensors' (pack_fp4_to_uint8 /
unpack_fp4_from_uint8), an independent implementation of the same nibble layout.
"""

from __future__ import annotations

import pytest
import torch
from quant_checkpoints import (
    activation_quant_bound,
    assert_matches_rounded,
    backends,
    fake_quant_e4m3,
    hf_logits,
    is_projection,
    run_logits,
    save_float_llama,
    save_quantized,
)

nvfp4_helpers = pytest.importorskip("compressed_tensors.compressors.nvfp4.helpers")
BACKENDS = backends()
E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
FUSED = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))
WEIGHT_ONLY_BOUND = 1e-4
STATIC = 4.0 / 448


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("float"))
    return path, save_float_llama(path)


def fused_amax(state: dict, name: str) -> torch.Tensor:
    parent, _, leaf = name.removesuffix(".weight").rpartition(".")
    for group in FUSED:
        if leaf in group:
            return max(state[f"{parent}.{p}.weight"].abs().max() for p in group)
    return state[name].abs().max()


def nvfp4(w: torch.Tensor, amax: torch.Tensor):
    n, k = w.shape
    glob = amax / (6 * 448)
    blocks = w.reshape(n, k // 16, 16)
    scale = (blocks.abs().amax(-1) / (6 * glob)).to(torch.float8_e4m3fn)
    scaled = blocks / (scale.float() * glob).unsqueeze(-1)
    mag = E2M1[(scaled.abs().unsqueeze(-1) - E2M1).abs().argmin(-1)]
    values = (mag * torch.sign(scaled)).reshape(n, k)
    packed = nvfp4_helpers.pack_fp4_to_uint8(values)
    back = nvfp4_helpers.unpack_fp4_from_uint8(packed, n, k, dtype=torch.float32)
    dense = (back.reshape(n, k // 16, 16) * (scale.float() * glob).unsqueeze(-1)).reshape(n, k)
    return packed, scale, glob, dense


def write(path, base, state, algo):
    tensors, dense = {}, {}
    for name, w in state.items():
        if not is_projection(name):
            tensors[name] = dense[name] = w
            continue
        prefix = name.removesuffix(".weight")
        if algo == "NVFP4":
            packed, scale, glob, dense[name] = nvfp4(w, fused_amax(state, name))
            tensors[name], tensors[f"{prefix}.weight_scale"] = packed, scale
            tensors[f"{prefix}.weight_scale_2"] = glob.reshape(())
            tensors[f"{prefix}.input_scale"] = torch.tensor(1.0)
        else:  # FP8: shards share the fused amax too, so no requantization is involved
            s = fused_amax(state, name) / 448
            q = (w / s).to(torch.float8_e4m3fn)
            tensors[name], tensors[f"{prefix}.weight_scale"] = q, s.reshape(())
            tensors[f"{prefix}.input_scale"] = torch.tensor(STATIC)
            dense[name] = q.float() * s
    hf_quant = {
        "producer": {"name": "modelopt", "version": "0.29.0"},
        "quantization": {
            "quant_algo": algo,
            "kv_cache_quant_algo": None,
            "exclude_modules": ["lm_head"],
            **({"group_size": 16} if algo == "NVFP4" else {}),
        },
    }
    save_quantized(path, tensors, None, {"hf_quant_config.json": hf_quant}, base=base)
    return dense


@pytest.mark.parametrize("algo", ["FP8", "NVFP4"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_modelopt(tmp_path, float_model, backend, algo):
    path = str(tmp_path)
    dense = write(path, *float_model, algo)
    prefill, decode, fed, runner = run_logits(path, backend)
    act = (lambda n, x: fake_quant_e4m3(x, static_scale=STATIC)) if algo == "FP8" else None
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, dense, fed, act))
    if algo == "FP8":  # e4m3 activations: see assert_matches_rounded
        assert_matches_rounded(out, ref, diverged_bound=activation_quant_bound(3, 8))
    else:
        assert_matches_rounded(out, ref, WEIGHT_ONLY_BOUND)
    op = "gemm.fp8" if algo == "FP8" else "gemm.fp4"
    assert f"modelopt {algo.lower()} via {op}" in runner.layer_methods["self_attn.o_proj"]
