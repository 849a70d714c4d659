"""Putting a quantization config on a built model: a method per linear layer before the
weights load, the checks after, and the startup line saying what each layer type got."""

from __future__ import annotations

import logging
import re
from collections import defaultdict

import torch
from torch import nn

from sglang.layers.linear import Linear
from sglang.layers.moe import FusedMoE
from sglang.layers.quantization.base import QuantizationConfig
from sglang.layers.quantization.experts import int4_act_order, int4_expert_group
from sglang.layers.quantization.fp8 import Fp8LinearMethod

logger = logging.getLogger(__name__)


def apply_quantization(model: nn.Module, config: QuantizationConfig | None) -> None:
    """Name every linear layer (its `prefix`) and give it the config's method, which replaces
    its float weight by the format's parameters. Call before loading the weights. The model
    keeps the config (`model.quant_config`) for layers that load their own (MoE experts)."""
    model.quant_config = config
    # A weight another module owns (an LM head tied to the embedding) stays as it is.
    shared = {
        id(p)
        for m in model.modules()
        if not isinstance(m, Linear)
        for p in m.parameters(recurse=False)
    }
    dequantized: dict[str, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, FusedMoE) and config is not None:
            why = keep_experts_quantized(name, module, config)
            if why:
                dequantized.setdefault(why, name)
        if not isinstance(module, Linear):
            continue
        module.prefix = name
        if config is None or not module.quantizable or id(module.weight) in shared:
            continue
        method = config.linear_method(name, module)
        if method is not None:
            module.set_quant_method(method)
    for why, first in dequantized.items():
        logger.info("MoE experts (%s, ...): dequantized at load: %s", first, why)


def keep_experts_quantized(name: str, module: FusedMoE, config: QuantizationConfig) -> str:
    """Give a MoE layer its checkpoint's quantized experts as they are (FP8 blocks:
    FusedMoE.keep_fp8_blocks; MXFP4: keep_mxfp4; int4 groups: keep_int4) when the backend
    serving moe.experts runs them; every other format is dequantized into the float experts at
    load (quantization.experts). Returns why a keepable format is not kept ("" when it is, or
    when the experts are in none of those formats)."""
    from sglang.layers.quantization.mxfp4 import Mxfp4Config

    if isinstance(config, Mxfp4Config):
        why = module.mxfp4_servable()
        if why is None:
            module.keep_mxfp4()
        return why or ""
    hidden = module.w2_weight.shape[1]
    probe = Linear(
        hidden, module.full_inter, ops=None, dtype=module.w13_weight.dtype, device="meta"
    )
    probe.prefix = f"{name}.0.gate_proj"
    method = config.linear_method(probe.prefix, probe)
    group = int4_expert_group(method)
    if group is not None:
        act_order = int4_act_order(method)
        why = module.int4_servable(group, act_order)
        if why is None:
            module.keep_int4(group, module.w13_weight.dtype, act_order)
        return why or ""
    if not isinstance(method, Fp8LinearMethod) or method.scheme != "block":
        return ""
    why = module.fp8_blocks_servable(tuple(method.block))
    if why is None:
        module.keep_fp8_blocks(tuple(method.block), method.block_scale)
    return why or ""


def optional_parameters(model: nn.Module) -> set[str]:
    """Names of quantized parameters a checkpoint may leave out (static input scales of a
    dynamic scheme, act-order indices): the loader does not report them missing."""
    names = set()
    for name, module in model.named_modules():
        method = getattr(module, "quant_method", None) if isinstance(module, Linear) else None
        if method is not None:
            names |= {f"{name}.{p}" for p, spec in method.specs.items() if spec.optional}
    return names


def mark_loaded(model: nn.Module, prefixes: tuple[str, ...] = ("",)) -> None:
    """Count every parameter of the linear layers under `prefixes` as loaded: --load-format
    dummy fills parameters directly, and optional layers a checkpoint lacks (DeepSeek-V3's MTP)
    keep their initial values."""
    for name, module in model.named_modules():
        if isinstance(module, Linear) and name.startswith(prefixes):
            shards = module.shard_names() or (None,)
            names = [n for n, _ in module.named_parameters(recurse=False)]
            module.loaded |= {(n, s) for n in names for s in shards}


def dummy_fill(model: nn.Module, seed: int = 0) -> None:
    """After `--load-format dummy`'s random fill: each quantized layer's values that zeros do
    not stand for (act-order orders: LinearMethod.dummy_fill, FusedMoE.dummy_fill)."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        method = getattr(module, "quant_method", None) if isinstance(module, Linear) else None
        if method is not None:
            method.dummy_fill(module, gen)
        elif isinstance(module, FusedMoE):
            module.dummy_fill(gen)


def layer_type(name: str) -> str:
    """model.layers.3.self_attn.qkv_proj -> self_attn.qkv_proj (layer indices dropped)."""
    parts = [p for p in name.split(".") if not re.fullmatch(r"\d+", p)]
    return ".".join(parts[-2:]) if len(parts) > 1 and parts[0] == "model" else ".".join(parts)


def layer_methods(model: nn.Module) -> dict[str, str]:
    """{layer type: "<format> via <op> (<kernel>)"} for every linear layer type of a prepared
    model (what the startup log line and /get_server_info show)."""
    found: dict[str, set[str]] = defaultdict(set)
    for name, module in model.named_modules():
        if isinstance(module, FusedMoE) and module.kept is not None:
            kernel = module.ops.choices.get("moe.experts", "?")
            found[layer_type(name)].add(f"{module.kept} (kept) via moe.experts ({kernel})")
        if isinstance(module, Linear):
            method = module.quant_method
            label = method.label if method is not None else "dense"
            kernel = getattr(module._fn, "kernel_name", None) or module.kernel_name
            found[layer_type(name)].add(f"{label} via {module.gemm_op} ({kernel})")
    return {kind: "; ".join(sorted(v)) for kind, v in found.items()}


def log_layer_methods(model: nn.Module, config: QuantizationConfig | None) -> dict[str, str]:
    methods = layer_methods(model)
    logger.info(
        "quantization %s: %s",
        config.describe() if config is not None else "none",
        ", ".join(f"{kind} = {what}" for kind, what in methods.items()),
    )
    return methods
