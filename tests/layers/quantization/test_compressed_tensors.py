"""compressed-tensors checkpoints written by compressed-tensors itself (the library
llm-compressor saves through): its preset schemes applied to a tiny transformers Llama, the
weight scales set by its own `calculate_qparams` / `generate_gparam` from min-max
statistics (llm-compressor's minmax observer in one step), then `ModelCompressor`
compresses, `save_pretrained` writes and `update_config` writes the config. The reference is
the same library's `fake_quantize` of each weight, run densely by transformers; activations,
where the scheme quantizes them, get the scheme's rounding on the reference side too.
"""

from __future__ import annotations

import pytest
import torch
from quant_checkpoints import (
    MATCHED_ACTIVATIONS_BOUND,
    PROJECTIONS,
    activation_quant_bound,
    assert_matches_rounded,
    backends,
    fake_quant_e4m3,
    hf_logits,
    int8_activation_bound,
    run_logits,
    save_float_llama,
)

ct = pytest.importorskip("compressed_tensors")
BACKENDS = backends()
WEIGHT_ONLY_BOUND = 1e-4


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("float"))
    return path, save_float_llama(path)


FUSED = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def fused_global_scales(model) -> dict[str, torch.Tensor]:
    """NVFP4 global scales, one per fused group (q/k/v, gate/up) as llm-compressor's
    update_fused_layer_weight_global_scales makes them: the group's smallest (its largest
    amax), so the engine's merged layers have one global scale."""
    from compressed_tensors.quantization.utils import generate_gparam

    scales = {}
    for name, module in model.named_modules():
        if getattr(module, "weight_global_scale", None) is not None:
            w = module.weight.data
            scales[name] = generate_gparam(w.min().reshape(1), w.max().reshape(1))
    fused = dict(scales)
    for name in scales:
        parent, _, leaf = name.rpartition(".")
        for group in FUSED:
            if leaf in group:
                fused[name] = torch.cat([scales[f"{parent}.{p}"] for p in group]).min().reshape(1)
    return fused


def _qparams(module, args, global_scale=None):
    from compressed_tensors.quantization.utils import calculate_qparams

    w = module.weight.data
    n, k = w.shape
    strategy = str(args.strategy.value if hasattr(args.strategy, "value") else args.strategy)
    if strategy in ("group", "tensor_group"):
        g = args.group_size
        wg = w.reshape(n, k // g, g)
        lo, hi = wg.amin(-1), wg.amax(-1)
        if strategy == "tensor_group":
            module.weight_global_scale.data.copy_(
                global_scale.reshape(module.weight_global_scale.shape)
            )
    elif strategy == "channel":
        lo, hi = w.amin(1, keepdim=True), w.amax(1, keepdim=True)
    elif strategy == "block":
        bn, bk = args.block_structure
        wb = w.reshape(n // bn, bn, k // bk, bk)
        lo, hi = wb.amin((1, 3)), wb.amax((1, 3))
    else:
        lo, hi = w.min().reshape(1), w.max().reshape(1)
    scale, zp = calculate_qparams(lo, hi, args, global_scale=global_scale)
    module.weight_scale.data.copy_(scale.reshape(module.weight_scale.shape))
    if getattr(module, "weight_zero_point", None) is not None:
        module.weight_zero_point.data.copy_(zp.reshape(module.weight_zero_point.shape))
    return global_scale


def write_ct(path, base, preset, weights=None, acts=None, static_input=None):
    """Apply `preset` (fields of its weight / activation args overridden by `weights` /
    `acts`) to the float model at `base`, calibrate, compress and save to `path`. Returns the
    dequantized state dict (compressed-tensors' fake_quantize of each weight)."""
    import transformers as tf
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (
        QuantizationConfig,
        apply_quantization_config,
        preset_name_to_scheme,
    )
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize

    model = tf.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    scheme = preset_name_to_scheme(preset, ["Linear"])
    for key, value in (weights or {}).items():
        setattr(scheme.weights, key, value)
    for key, value in (acts or {}).items():
        setattr(scheme.input_activations, key, value)
    apply_quantization_config(
        model, QuantizationConfig(config_groups={"group_0": scheme}, ignore=["lm_head"])
    )
    dense, weight_scales = {}, {}
    with torch.no_grad():
        global_scales = fused_global_scales(model)
        for name, module in model.named_modules():
            if getattr(module, "quantization_scheme", None) is None:
                continue
            args = module.quantization_scheme.weights
            global_scale = _qparams(module, args, global_scales.get(name))
            if static_input is not None:
                module.input_scale.data.fill_(static_input)
            weight_scales[name] = module.weight_scale.data.clone()
            dense[f"{name}.weight"] = fake_quantize(
                module.weight.data,
                module.weight_scale.data,
                getattr(module, "weight_zero_point", None),
                args,
                global_scale=global_scale,
            ).clone()
        compressor = ModelCompressor.from_pretrained_model(model)
        compressor.compress_model(model)
    model.save_pretrained(path)
    compressor.update_config(path)
    if static_input is not None:  # SGLang's requantize_with_max_scale of merged shards
        for name in list(dense):
            parent, _, leaf = name.removesuffix(".weight").rpartition(".")
            for group in FUSED:
                if leaf in group:
                    top = max(float(weight_scales[f"{parent}.{p}"].max()) for p in group)
                    dense[name] = (dense[name] / top).to(torch.float8_e4m3fn).float() * top
    return dense


def int8_token(name, x):
    s = x.abs().amax(-1, keepdim=True) / 127
    return torch.round(x / torch.where(s > 0, s, 1)).clamp(-127, 127) * s


CASES = {
    "w4a16": ("W4A16", {"group_size": 32}, None, None, None, "w4a16"),
    "w4a16-asym": ("W4A16_ASYM", {"group_size": 32}, None, None, None, "w4a16-asym"),
    "w4a16-channel": (
        "W4A16",
        {"strategy": "channel", "group_size": None},
        None,
        None,
        None,
        "w4a16",
    ),
    "fp8-dynamic": (
        "FP8_DYNAMIC",
        None,
        None,
        None,
        lambda n, x: fake_quant_e4m3(x, per_token=True),
        "fp8",
    ),
    "fp8-static": (
        "FP8",
        None,
        None,
        4.0 / 448,
        lambda n, x: fake_quant_e4m3(x, static_scale=4.0 / 448),
        "fp8",
    ),
    "fp8-block": (
        "FP8_BLOCK",
        {"block_structure": [32, 32]},
        {"group_size": 32},
        None,
        lambda n, x: fake_quant_e4m3(x, group=32),
        "fp8",
    ),
    "int8": ("W8A8", None, None, None, int8_token, "int8"),
    "nvfp4": ("NVFP4", None, None, None, None, "nvfp4"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_compressed_tensors(tmp_path, float_model, backend, case):
    preset, weights, acts, static_input, act_quant, kind = CASES[case]
    base, state = float_model
    path = str(tmp_path)
    dense = write_ct(path, base, preset, weights, acts, static_input)
    assert set(dense) == {n for n in state if n.rsplit(".", 2)[-2] in PROJECTIONS}
    prefill, decode, fed, runner = run_logits(path, backend)
    out = torch.cat([prefill, decode])
    ref = torch.cat(hf_logits(path, {**state, **dense}, fed, act_quant))
    bound = WEIGHT_ONLY_BOUND if act_quant is None else MATCHED_ACTIVATIONS_BOUND
    diverged = None
    if kind == "int8":
        bound = int8_activation_bound()
    elif act_quant is not None:  # e4m3 activations: see assert_matches_rounded
        diverged = activation_quant_bound(3, 8)
    assert_matches_rounded(out, ref, bound, diverged_bound=diverged)
    assert runner.layer_methods["mlp.down_proj"].startswith(f"compressed-tensors {kind} via")
    assert runner.layer_methods["lm_head"].startswith("dense")
