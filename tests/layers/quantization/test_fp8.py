"""FP8 checkpoints (quant_method "fp8": block-wise as DeepSeek-V3 / Qwen3-FP8 publish them,
per-tensor with static or dynamic activation scales; FBGEMM's per-channel) and
`--quantization fp8` at load time, on the reference and xeon backends, against transformers
running the dequantized weights.

The writer follows the format's description (transformers' FineGrainedFP8 and SGLang's
Fp8Config): w ~ weight.float() * scale, with `weight_scale_inv` one multiplier per
(bn, bk) tile of [N, K]. The reference dequantizes by that description, independently of
the engine's helpers. Activations are quantized to e4m3 (3 mantissa bits) by the engine, not
by the reference: the logits' tolerance is that rounding's (activation_quant_bound).
"""

from __future__ import annotations

import json

import pytest
import torch
from quant_checkpoints import (
    activation_quant_bound,
    assert_matches_rounded,
    backends,
    fake_quant_e4m3,
    hf_logits,
    int8_activation_bound,
    is_projection,
    rel_rms,
    run_logits,
    save_float_llama,
    save_quantized,
)

FP8 = torch.float8_e4m3fn
BACKENDS = backends()
LINEARS_ON_PATH = 2 * 4  # quantized linear inputs per token path (qkv, o, gate_up, down)


def block_quantize(w: torch.Tensor, bn: int, bk: int):
    n, k = w.shape
    s = torch.zeros((n + bn - 1) // bn, (k + bk - 1) // bk)
    q = torch.empty(n, k, dtype=FP8)
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            tile = w[i * bn : (i + 1) * bn, j * bk : (j + 1) * bk]
            s[i, j] = tile.abs().max() / 448
            q[i * bn : (i + 1) * bn, j * bk : (j + 1) * bk] = (tile / s[i, j]).to(FP8)
    return q, s


def block_dequantize(q: torch.Tensor, s: torch.Tensor, bn: int, bk: int) -> torch.Tensor:
    out = q.float().clone()
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            out[i * bn : (i + 1) * bn, j * bk : (j + 1) * bk] *= s[i, j]
    return out


def write_block(path, base, state, block=(32, 32)):
    tensors, dense = {}, {}
    for name, w in state.items():
        if is_projection(name):
            q, s = block_quantize(w, *block)
            tensors[name], tensors[name.replace("weight", "weight_scale_inv")] = q, s
            dense[name] = block_dequantize(q, s, *block)
        else:
            tensors[name] = dense[name] = w
    config = {
        "quant_method": "fp8",
        "fmt": "e4m3",
        "activation_scheme": "dynamic",
        "weight_block_size": list(block),
    }
    return save_quantized(path, tensors, config, base=base), dense


MERGED = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def write_per_tensor(path, base, state, static: bool):
    """Per-tensor scales, each projection its own (q, k and v differ). The reference with
    static activations requantizes merged shards to their largest scale, as SGLang describes
    (requantize_with_max_scale); with dynamic ones they stay exact."""
    tensors, dense, scales = {}, {}, {}
    for name, w in state.items():
        if is_projection(name):
            s = w.abs().max() / 448
            q = (w / s).to(FP8)
            tensors[name], tensors[name.replace("weight", "weight_scale")] = q, s.reshape(())
            if static:  # a calibrated activation range of 4 (inputs are normalised)
                tensors[name.replace("weight", "input_scale")] = torch.tensor(4.0 / 448)
            dense[name], scales[name] = q.float() * s, s
        else:
            tensors[name] = dense[name] = w
    if static:
        for name in list(dense):
            for group in MERGED:
                if any(f".{p}." in name for p in group):
                    top = max(
                        scales[name.replace(next(p for p in group if f".{p}." in name), p)]
                        for p in group
                    )
                    dense[name] = (dense[name] / top).to(FP8).float() * top
    config = {"quant_method": "fp8", "activation_scheme": "static" if static else "dynamic"}
    return save_quantized(path, tensors, config, base=base), dense


def write_per_channel(path, base, state):
    tensors, dense = {}, {}
    for name, w in state.items():
        if is_projection(name):
            s = w.abs().amax(dim=1, keepdim=True) / 448
            q = (w / s).to(FP8)
            tensors[name], tensors[name.replace("weight", "weight_scale")] = q, s
            dense[name] = q.float() * s
        else:
            tensors[name] = dense[name] = w
    return save_quantized(path, tensors, {"quant_method": "fbgemm_fp8"}, base=base), dense


def check_against_reference(path, dense, backend, act_quant, bound=None, **args):
    """Against transformers on the dequantized weights: with the format's activation rounding
    applied there too (tight), and without it (the bound that rounding alone explains)."""
    prefill, decode, fed, runner = run_logits(path, backend, **args)
    out = torch.cat([prefill, decode])
    ref = torch.cat(hf_logits(path, dense, fed, act_quant))
    linears = LINEARS_ON_PATH * (2 if args.get("quantization") else 1)
    e4m3 = bound is None  # int8 activations (`bound` given) keep the whole-tensor check
    diverged = activation_quant_bound(3, linears) if e4m3 else None
    assert_matches_rounded(out, ref, bound, diverged_bound=diverged)
    unquantized = torch.cat(hf_logits(path, dense, fed))
    assert rel_rms(out, unquantized) < activation_quant_bound(3, linears)
    return runner


def PER_TOKEN(name, x):
    return fake_quant_e4m3(x, per_token=True)


def PER_TENSOR_DYNAMIC(name, x):
    """Merged projections with unequal shard scales run per channel: activations per token."""
    merged = name.rpartition(".")[2] in ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
    return fake_quant_e4m3(x, per_token=merged)


ACT = {False: PER_TENSOR_DYNAMIC, True: lambda name, x: fake_quant_e4m3(x, static_scale=4.0 / 448)}


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("float"))
    return path, save_float_llama(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_block_fp8(tmp_path, float_model, backend):
    path, dense = write_block(str(tmp_path), *float_model)
    runner = check_against_reference(
        path, dense, backend, lambda name, x: fake_quant_e4m3(x, group=32)
    )
    methods = runner.layer_methods
    assert methods["self_attn.qkv_proj"].startswith("fp8 (block 32x32) via gemm.fp8")
    assert methods["lm_head"].startswith("dense via gemm.dense")


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_per_tensor_fp8(tmp_path, float_model, backend, static):
    path, dense = write_per_tensor(str(tmp_path), *float_model, static)
    check_against_reference(path, dense, backend, ACT[static])


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_channel_fp8(tmp_path, float_model, backend):
    path, dense = write_per_channel(str(tmp_path), *float_model)
    check_against_reference(path, dense, backend, PER_TOKEN)


@pytest.mark.parametrize("backend", BACKENDS)
def test_load_time_fp8(float_model, backend):
    path, state = float_model
    # The reference gets the weights rounded per channel as the format describes.
    dense = {}
    for name, w in state.items():
        if is_projection(name):
            s = w.abs().amax(dim=1, keepdim=True) / 448
            w = (w / s).to(FP8).float() * s
        dense[name] = w
    runner = check_against_reference(path, dense, backend, PER_TOKEN, quantization="fp8")
    assert runner.layer_methods["mlp.down_proj"].startswith("fp8 (load-time, per-channel)")


def write_int8(path, base, state):
    tensors, dense = {}, {}
    for name, w in state.items():
        if is_projection(name):
            s = w.abs().amax(dim=1, keepdim=True) / 127
            q = torch.round(w / s).clamp(-127, 127).to(torch.int8)
            tensors[name], tensors[name.replace("weight", "weight_scale")] = q, s
            dense[name] = q.float() * s
        else:
            tensors[name] = dense[name] = w
    return save_quantized(path, tensors, {"quant_method": "w8a8_int8"}, base=base), dense


def INT8_PER_TOKEN(name, x):
    s = x.abs().amax(-1, keepdim=True) / 127
    return torch.round(x / torch.where(s > 0, s, 1)).clamp(-127, 127) * s


@pytest.mark.parametrize("backend", BACKENDS)
def test_sglang_w8a8_formats(tmp_path, float_model, backend):
    """SGLang's own w8a8_fp8 (per-channel e4m3) and w8a8_int8 (per-channel int8) checkpoints."""
    path, dense = write_per_channel(str(tmp_path / "fp8"), *float_model)
    with open(f"{path}/config.json") as f:
        cfg = f.read().replace('"fbgemm_fp8"', '"w8a8_fp8"')
    with open(f"{path}/config.json", "w") as f:
        f.write(cfg)
    check_against_reference(path, dense, backend, PER_TOKEN)
    path, dense = write_int8(str(tmp_path / "int8"), *float_model)
    runner = check_against_reference(
        path, dense, backend, INT8_PER_TOKEN, bound=int8_activation_bound()
    )
    assert "via gemm.int8" in runner.layer_methods["self_attn.qkv_proj"]


def test_tied_head_stays_tied_under_a_format_that_names_it(tmp_path):
    """compressed-tensors without lm_head in its ignore list: a head tied to the embedding
    keeps the embedding's float weight (the checkpoint has no lm_head tensors to quantize)."""
    base = str(tmp_path / "float")
    state = save_float_llama(base, tie_word_embeddings=True)
    path = write_per_channel(str(tmp_path / "q"), base, state)[0]
    with open(f"{path}/config.json") as f:
        cfg = json.load(f)
    cfg["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "format": "float-quantized",
        "config_groups": {
            "g": {
                "targets": ["Linear"],
                "weights": {
                    "type": "float",
                    "num_bits": 8,
                    "strategy": "channel",
                    "symmetric": True,
                },
                "input_activations": {
                    "type": "float",
                    "num_bits": 8,
                    "strategy": "token",
                    "dynamic": True,
                },
            }
        },
        "ignore": [],
    }
    with open(f"{path}/config.json", "w") as f:
        json.dump(cfg, f)
    _, _, _, runner = run_logits(path, "reference")
    assert runner.layer_methods["lm_head"].startswith("dense")
    assert runner.layer_methods["mlp.down_proj"].startswith("compressed-tensors fp8")
