"""Quantized MoE checkpoints: Qwen3-MoE and DeepSeek-V3 (MLA) in FP8 block-wise, and Qwen3-MoE
in W4A16 (GPTQ, AWQ, compressed-tensors pack-quantized), experts and all. FP8 block-scaled
routed experts stay e4m3 where the backend declares moe:fp8_block, and int4 experts stay 4-bit
codes where it declares moe:int4 (reference, xeon and cuda do): moe.experts takes the codes
and scales. Other formats' experts (GPTQ act-order), and MLA's kv_b_proj, load through the
format's own method and are dequantized into float weights (quantization.experts); routers
stay float; every other linear layer runs its quantized op.
Compared with transformers on the dequantized weights, the format's activation rounding
applied where the engine quantizes activations (the linear layers, not the experts)."""

from __future__ import annotations

import pytest
import torch
from quant_checkpoints import (
    MATCHED_ACTIVATIONS_BOUND,
    fake_quant_e4m3,
    greedy_agrees,
    hf_logits,
    rel_rms,
    run_logits,
    save_quantized,
)
from sglang.layers.moe import FusedMoE
from test_awq_gptq import FLOAT32_BOUND, write_awq, write_gptq
from test_fp8 import block_dequantize, block_quantize

COMMON = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=256,
    initializer_range=0.1,
    rms_norm_eps=1e-6,
    bos_token_id=1,
    eos_token_id=2,
)
LINEARS = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "q_a_proj",
    "q_b_proj",
    "kv_a_proj_with_mqa",
)


def _supported(arch: str) -> bool:
    from sglang.model_executor.model_registry import supported_architectures

    return arch in supported_architectures()


def save_float(path: str, name: str) -> dict[str, torch.Tensor]:
    import transformers as tf

    if name == "qwen3-moe":
        config = tf.Qwen3MoeConfig(
            **COMMON,
            num_key_value_heads=2,
            head_dim=16,
            moe_intermediate_size=32,
            num_experts=4,
            num_experts_per_tok=2,
            norm_topk_prob=True,
        )
    else:
        config = tf.DeepseekV3Config(
            **COMMON,
            num_key_value_heads=4,
            moe_intermediate_size=32,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_shared_experts=1,
            first_k_dense_replace=1,
            q_lora_rank=48,
            kv_lora_rank=32,
            qk_rope_head_dim=16,
            qk_nope_head_dim=32,
            v_head_dim=32,
            n_group=4,
            topk_group=2,
            routed_scaling_factor=2.5,
        )
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.normal_(1.0, 0.2)
    model.save_pretrained(path)
    from safetensors.torch import load_file

    return load_file(f"{path}/model.safetensors")


def quantized_names(state) -> list[str]:
    """2-D projection weights, experts included; routers, embeddings, head and norms not."""
    keep = (*LINEARS, "kv_b_proj")
    return [
        n
        for n, w in state.items()
        if w.dim() == 2 and n.endswith(".weight") and n.rsplit(".", 2)[-2] in keep
    ]


def _available(backend: str) -> bool:
    from sglang.backend.discovery import discover

    found = discover().backends.get(backend)
    return found is not None and found.available


CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not _available("cuda"), reason="no GPU"))


@pytest.mark.parametrize("backend", ["reference", "xeon", CUDA])
@pytest.mark.parametrize(
    "arch,cls", [("qwen3-moe", "Qwen3MoeForCausalLM"), ("deepseek-v3", "DeepseekV3ForCausalLM")]
)
def test_fp8_block_moe(tmp_path, arch, cls, backend):
    if not _supported(cls):
        pytest.skip(f"{cls} is not registered in this environment (sglang-models entry points)")
    base = str(tmp_path / "float")
    state = save_float(base, arch)
    tensors, dense = dict(state), dict(state)
    for name in quantized_names(state):
        q, s = block_quantize(state[name], 32, 32)
        tensors[name], tensors[name.replace("weight", "weight_scale_inv")] = q, s
        dense[name] = block_dequantize(q, s, 32, 32)
    config = {
        "quant_method": "fp8",
        "fmt": "e4m3",
        "activation_scheme": "dynamic",
        "weight_block_size": [32, 32],
    }
    path = save_quantized(str(tmp_path / "fp8"), tensors, config, base=base)
    prefill, decode, fed, runner = run_logits(path, backend)
    out = torch.cat([prefill, decode])
    ref = torch.cat(
        hf_logits(path, dense, fed, lambda n, x: fake_quant_e4m3(x, group=32), hooked=LINEARS)
    )
    assert rel_rms(out, ref) < MATCHED_ACTIVATIONS_BOUND, rel_rms(out, ref)
    checked, same = greedy_agrees(out, ref, float((out - ref).abs().max()))
    assert checked >= len(out) // 2 and same == checked
    assert runner.layer_methods["mlp.gate"].startswith("dense")  # the router
    # The routed experts stayed FP8 blocks: e4m3 codes and float32 block scales.
    experts = [m for m in runner.model.modules() if isinstance(m, FusedMoE)]
    assert (
        experts
        and all(
            m.w13_weight.dtype == m.w2_weight.dtype == torch.float8_e4m3fn
            and m.w13_scale.shape[1:] == (2, 2)  # 32 intermediate features, hidden 64: blocks of 32
            and m.w2_scale.shape[1:] == (2, 1)
            for m in experts
        )
    )
    assert runner.layer_methods["mlp.experts"].startswith(
        "fp8 block [32, 32] (kept) via moe.experts"
    )


def test_fp8_block_moe_missing_expert_scale(tmp_path):
    """A kept FP8 expert without its block scales: a startup error naming the tensor."""
    from sglang.layers.quantization.errors import QuantizationError

    if not _supported("Qwen3MoeForCausalLM"):
        pytest.skip("Qwen3MoeForCausalLM is not registered in this environment")
    base = str(tmp_path / "float")
    state = save_float(base, "qwen3-moe")
    tensors = dict(state)
    for name in quantized_names(state):
        q, s = block_quantize(state[name], 32, 32)
        tensors[name], tensors[name.replace("weight", "weight_scale_inv")] = q, s
    missing = "model.layers.1.mlp.experts.3.up_proj.weight_scale_inv"
    del tensors[missing]
    config = {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [32, 32]}
    path = save_quantized(str(tmp_path / "fp8"), tensors, config, base=base)
    with pytest.raises(QuantizationError, match=f"checkpoint lacks {missing}$"):
        run_logits(path, "xeon")


def write_pack_quantized(path, base, state, group=32):
    """compressed-tensors W4A16 (pack-quantized, symmetric, groups along K) by its published
    layout: weight_packed int32 [N, K/8] (value i of a word at bits 4i, along K) holding q + 8,
    weight_scale [N, K/G]; w = (stored - 8) * scale. Routers and the head stay float."""
    from int_writers import dequantize, pack_gptq, quantize_groups
    from quant_checkpoints import is_projection, save_quantized

    tensors, dense = {}, {}
    for name, w in state.items():
        if not is_projection(name):
            tensors[name] = dense[name] = w
            continue
        intweight, zeros, scales, g_idx = quantize_groups(w, group, 4, sym=True)
        qweight, _ = pack_gptq(intweight, zeros, 4)  # [K/8, N] packed along K
        prefix = name.removesuffix(".weight")
        tensors[f"{prefix}.weight_packed"] = qweight.t().contiguous()
        tensors[f"{prefix}.weight_scale"] = scales.t().contiguous()
        tensors[f"{prefix}.weight_shape"] = torch.tensor(list(w.shape))
        dense[name] = dequantize(intweight, zeros, scales, g_idx)
    weights = {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group"}
    config = {
        "quant_method": "compressed-tensors",
        "format": "pack-quantized",
        "config_groups": {
            "group_0": {"targets": ["Linear"], "weights": {**weights, "group_size": group}}
        },
        "ignore": ["lm_head", "re:.*mlp.gate$"],
    }
    return save_quantized(path, tensors, config, base=base), dense


INT4_FORMATS = {
    # name: (writer, kept)
    "gptq": (lambda p, b, s: write_gptq(p, b, s, sym=True), True),
    "gptq-asym": (lambda p, b, s: write_gptq(p, b, s, sym=False), True),
    "awq": (write_awq, True),
    "pack-quantized": (write_pack_quantized, True),
    # kept where the backend declares moe:act_order (reference, xeon, cuda)
    "gptq-actorder": (lambda p, b, s: write_gptq(p, b, s, sym=True, desc_act=True), True),
}


@pytest.mark.parametrize("backend", ["reference", "xeon", CUDA])
@pytest.mark.parametrize("fmt", list(INT4_FORMATS))
def test_int4_moe(tmp_path, fmt, backend):
    """W4A16 Qwen3-MoE, experts included, against transformers on the dequantized weights:
    weight-only and exact in float32, so the bound is float32 summation order's. The experts
    stay int4 codes with scales and zeros per group of 32; act-order's too (each expert's input
    order in w13_perm, down's order in gate's and up's rows) where the backend declares
    moe:act_order, else dequantized."""
    if not _supported("Qwen3MoeForCausalLM"):
        pytest.skip("Qwen3MoeForCausalLM is not registered in this environment")
    base = str(tmp_path / "float")
    state = save_float(base, "qwen3-moe")
    writer, kept = INT4_FORMATS[fmt]
    path, dense = writer(str(tmp_path / fmt), base, state)
    prefill, decode, fed, runner = run_logits(path, backend)
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, dense, fed))
    assert rel_rms(out, ref) < FLOAT32_BOUND, rel_rms(out, ref)
    checked, same = greedy_agrees(out, ref, float((out - ref).abs().max()))
    assert checked == len(out) and same == checked
    assert runner.layer_methods["mlp.gate"].startswith("dense")  # the router
    experts = [m for m in runner.model.modules() if isinstance(m, FusedMoE)]
    assert experts
    for m in experts:
        if kept:  # 2I = 64 rows of 64 / 2 bytes, 2 groups; w2: 64 rows of 32 / 2, 1 group
            assert m.w13_weight.dtype == m.w2_weight.dtype == torch.uint8
            assert m.w13_weight.shape[1:] == (64, 32) and m.w2_weight.shape[1:] == (64, 16)
            assert m.w13_scale.shape[1:] == m.w13_zeros.shape[1:] == (64, 2)
            assert m.w2_scale.shape[1:] == m.w2_zeros.shape[1:] == (64, 1)
            if fmt == "gptq-actorder":  # each expert's own order of the 64 hidden features
                e = m.w13_weight.shape[0]
                assert m.w13_perm.shape == (e, 64) and e > 1
                assert len({tuple(p.tolist()) for p in m.w13_perm}) == e
                assert all(sorted(p.tolist()) == list(range(64)) for p in m.w13_perm)
        else:
            assert m.kept is None and m.w13_weight.dtype == torch.float32
    methods = runner.layer_methods.get("mlp.experts", "")  # kept formats only
    if kept:
        label = "int4 group 32 act-order" if fmt == "gptq-actorder" else "int4 group 32"
        assert methods.startswith(f"{label} (kept) via moe.experts"), methods
    else:
        assert "(kept)" not in methods


def test_int4_moe_act_order_gate_and_up_disagree(tmp_path):
    """Act-order experts whose gate_proj and up_proj orders differ (one w13_perm row cannot
    hold both): a startup error naming the expert, not wrong outputs."""
    from sglang.layers.quantization.errors import QuantizationError

    if not _supported("Qwen3MoeForCausalLM"):
        pytest.skip("Qwen3MoeForCausalLM is not registered in this environment")
    base = str(tmp_path / "float")
    state = save_float(base, "qwen3-moe")
    up = "model.layers.1.mlp.experts.3.up_proj.weight"
    # the writer orders projections by their input; a separate state for up gives it its own
    path, _ = write_gptq(str(tmp_path / "q"), base, state, desc_act=True)
    other, _ = write_gptq(str(tmp_path / "o"), base, state, desc_act=True, seed=1)
    from quant_checkpoints import save_quantized
    from safetensors.torch import load_file

    tensors = load_file(f"{path}/model.safetensors")
    swapped = load_file(f"{other}/model.safetensors")
    prefix = up.removesuffix(".weight")
    for kind in ("qweight", "qzeros", "scales", "g_idx"):
        tensors[f"{prefix}.{kind}"] = swapped[f"{prefix}.{kind}"]
    config = {"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": True}
    path = save_quantized(str(tmp_path / "mixed"), tensors, config, base=base)
    with pytest.raises(QuantizationError, match="experts.3.*different act-order input orders"):
        run_logits(path, "reference")


def test_int4_moe_missing_expert_projection(tmp_path):
    """A kept int4 expert projection missing from the checkpoint (all its tensors), and one
    missing a tensor: startup errors naming them."""
    from quant_checkpoints import save_quantized
    from sglang.layers.quantization.errors import QuantizationError

    if not _supported("Qwen3MoeForCausalLM"):
        pytest.skip("Qwen3MoeForCausalLM is not registered in this environment")
    base = str(tmp_path / "float")
    state = save_float(base, "qwen3-moe")
    path, _ = write_gptq(str(tmp_path / "gptq"), base, state)
    from safetensors.torch import load_file

    tensors = load_file(f"{path}/model.safetensors")
    config = {"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": False}
    whole = "model.layers.1.mlp.experts.2.down_proj"
    part = "model.layers.0.mlp.experts.3.up_proj.scales"
    gone = {k: v for k, v in tensors.items() if not k.startswith(whole + ".")}
    path = save_quantized(str(tmp_path / "no-proj"), gone, config, base=base)
    with pytest.raises(QuantizationError, match=f"checkpoint lacks {whole} \\(g_idx, qweight"):
        run_logits(path, "xeon")
    gone = {k: v for k, v in tensors.items() if k != part}
    path = save_quantized(str(tmp_path / "no-scales"), gone, config, base=base)
    with pytest.raises(QuantizationError, match=f"checkpoint lacks {part}"):
        run_logits(path, "xeon")


def test_int4_moe_in_bfloat16_on_xeon(tmp_path):
    """GPTQ Qwen3-MoE served in bfloat16 on xeon: where the native kernels are built, the
    experts' kernel puts them in its native int4 form at prepare (the codes, scales and zeros
    parameters dropped) and the logits stay within the bfloat16 serving bound of transformers
    on the dequantized weights."""
    from sglang.conformance.model import logits_bound
    from sglang_xeon import native

    if not _supported("Qwen3MoeForCausalLM"):
        pytest.skip("Qwen3MoeForCausalLM is not registered in this environment")
    base = str(tmp_path / "float")
    state = save_float(base, "qwen3-moe")
    path, dense = write_gptq(str(tmp_path / "gptq"), base, state)
    prefill, decode, fed, runner = run_logits(path, "xeon", dtype="bfloat16")
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(path, dense, fed))
    assert rel_rms(out, ref) < logits_bound(torch.bfloat16), rel_rms(out, ref)
    checked, same = greedy_agrees(out, ref, float((out - ref).abs().max()))
    assert same == checked
    experts = [m for m in runner.model.modules() if isinstance(m, FusedMoE)]
    built = native.why_unavailable() is None and native.ops.int4_gemm_supported()
    for m in experts:
        assert m.kept == "int4 group 32"
        assert (m.w13_weight is None) == built  # held in the kernel's own form instead
    if built:
        assert "xeon.native_moe_experts" in runner.layer_methods["mlp.experts"]


@pytest.mark.parametrize("backend", ["reference", "xeon"])
def test_load_time_int4_keeps_moe_experts_4bit(tmp_path, backend):
    """`--quantization int4` on a float Qwen3-MoE: every linear layer and the routed experts
    are quantized at load (groups of 32, float zero points: both backends declare
    int4:float_zeros) and the experts stay int4 codes; against transformers on the same
    weights quantized and dequantized by gemm.int4's own quantizer."""
    from sglang.layers.linear import INT4_GROUP_SIZE, int4_weight_args
    from sglang.layers.quantization.dequant import dequantize

    if not _supported("Qwen3MoeForCausalLM"):
        pytest.skip("Qwen3MoeForCausalLM is not registered in this environment")
    base = str(tmp_path / "float")
    state = save_float(base, "qwen3-moe")
    dense = dict(state)
    for name in [*quantized_names(state), "lm_head.weight"]:
        args = int4_weight_args(state[name], INT4_GROUP_SIZE, float_zeros=True)
        dense[name] = dequantize("gemm.int4", args)
    prefill, decode, fed, runner = run_logits(base, backend, quantization="int4")
    out, ref = torch.cat([prefill, decode]), torch.cat(hf_logits(base, dense, fed))
    assert rel_rms(out, ref) < FLOAT32_BOUND, rel_rms(out, ref)
    checked, same = greedy_agrees(out, ref, float((out - ref).abs().max()))
    assert checked == len(out) and same == checked
    assert runner.layer_methods["mlp.experts"].startswith("int4 group 32 (kept) via moe.experts")
    assert runner.layer_methods["mlp.gate"].startswith("dense")  # the router


def test_act_order_dummy_load_takes_real_layouts(tmp_path):
    """`--load-format dummy` of an act-order GPTQ MoE config (how benchmarks run full-size
    configs): the dense layers get a valid random g_idx (zeros are no act-order layout and sent
    xeon's int4 layers to a bf16 copy) and take the native form; each expert gets its own
    random input order; the forward runs."""
    from sglang_xeon import native
    from sglang_xeon.kernels.gemm_int4 import Int4Weight

    if not _supported("Qwen3MoeForCausalLM"):
        pytest.skip("Qwen3MoeForCausalLM is not registered in this environment")
    if native.why_unavailable() or not native.ops.int4_gemm_supported():
        pytest.skip("xeon's native int4 kernel is not built here")
    base = str(tmp_path / "float")
    state = save_float(base, "qwen3-moe")
    path, _ = write_gptq(str(tmp_path / "q"), base, state, desc_act=True)
    prefill, decode, _, runner = run_logits(path, "xeon", dtype="bfloat16", load_format="dummy")
    assert torch.isfinite(prefill).all() and torch.isfinite(decode).all()
    prepared = [
        m._weights["qweight"]
        for m in runner.model.modules()
        if isinstance(getattr(m, "_weights", None), dict)
        and isinstance(m._weights.get("qweight"), Int4Weight)
    ]
    assert prepared and all(w.native is not None and w.dense is None for w in prepared)
    assert all(w.perm is not None for w in prepared)
    experts = [m for m in runner.model.modules() if isinstance(m, FusedMoE)]
    for m in experts:
        perms = m._prepared["w13_perm"]
        assert all(sorted(p.tolist()) == list(range(64)) for p in perms)
        assert not torch.equal(perms[0], torch.arange(64, dtype=perms.dtype))
