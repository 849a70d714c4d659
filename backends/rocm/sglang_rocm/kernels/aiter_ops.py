"""AMD's aiter kernels for the ops it does best, above the shared Triton kernels (priority 20).

Each wrapper turns the op spec's call into aiter's documented one:
- norm.rms:    aiter.rms_norm(x2d, weight, eps) -> out; with a residual,
               aiter.rmsnorm2d_fwd_with_add(out, x, residual_in, residual_out, weight, eps)
- moe.experts: aiter.fused_moe.fused_moe(x, w1 [E, 2I, D], w2 [E, D, I], topk_weight f32,
               topk_ids i32, activation=ActivationType.Silu|Gelu, quant_type=QuantType.No)
               (the spec's w13 is aiter's w1: gate rows then up rows)
- gemm.fp8:    aiter.gemm_a8w8_blockscale(xq, wq, x_scale [M, K/128], w_scale [N/128, K/128],
               dtype) for 128x128 block scales, the activations quantized per token group as
               the spec says (sglang.ops.quant.fp8); OCP e4m3fn operands, so gfx950 only.
aiter raises on import where ROCm is absent, so it is imported once, on first use, inside a
guard that catches everything; until it imports, every kernel here reports it unavailable and
the Triton kernel serves. Never imported in emulation mode.
"""

from __future__ import annotations

import functools
import importlib

import torch
from sglang.backend.plugin_kit import installed_version
from sglang.ops.quant import fp8 as q8

from sglang_rocm.emulation import emulated_arch

PRIORITY = 20  # above the shared Triton kernels (0; attention 10)


@functools.cache
def _load() -> tuple[object | None, str | None]:
    if emulated_arch() is not None:
        return None, "emulation mode: aiter needs a ROCm GPU"
    if installed_version("amd-aiter") is None:
        return None, "amd-aiter is not installed (pip install sglang-rocm[aiter])"
    try:
        return importlib.import_module("aiter"), None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - aiter raises anything without ROCm
        return None, f"import aiter failed: {type(e).__name__}: {e}"


def why_unavailable() -> str | None:
    return _load()[1]


def aiter():
    module, why = _load()
    if module is None:
        raise RuntimeError(why)
    return module


def _half_only(config) -> str | None:
    dtype = config.get("dtype")
    if dtype is not None and dtype not in (torch.float16, torch.bfloat16):
        return f"aiter runs float16/bfloat16, not {dtype}"
    return None


def rms_norm(x, weight, eps=1e-6, residual=None):
    shape = x.shape
    x2 = x.reshape(-1, shape[-1])
    w = weight.to(x.dtype)
    if residual is None:
        return aiter().rms_norm(x2, w, eps).view(shape)
    out, res_out = torch.empty_like(x2), torch.empty_like(x2)
    aiter().rmsnorm2d_fwd_with_add(out, x2, residual.reshape(x2.shape), res_out, w, eps)
    return out.view(shape), res_out.view(shape)


def moe_experts(x, w13, w2, topk_weights, topk_ids, activation="silu"):
    if activation not in ("silu", "gelu"):
        raise ValueError(f"activation must be silu or gelu, got {activation!r}")
    if x.shape[0] == 0:
        return torch.zeros_like(x)
    fused_moe = importlib.import_module("aiter.fused_moe").fused_moe
    act = aiter().ActivationType.Silu if activation == "silu" else aiter().ActivationType.Gelu
    return fused_moe(
        x.contiguous(),
        w13.contiguous(),
        w2.contiguous(),
        topk_weights.float(),
        topk_ids.to(torch.int32),
        activation=act,
        quant_type=aiter().QuantType.No,
    )


def _block_only(config) -> str | None:
    if config.get("scheme") not in (None, "block"):
        return f"aiter's FP8 GEMM here is the 128x128 block-scale one, not {config['scheme']}"
    if tuple(config.get("block_size") or (128, 128)) != (128, 128):
        return f"block_size {tuple(config['block_size'])} is not (128, 128)"
    return _half_only(config)


def fp8_block(x, weight, weight_scale, scheme, input_scale=None, block_size=(128, 128), bias=None):
    if scheme != "block":
        raise ValueError(f"the aiter FP8 GEMM serves scheme 'block', not {scheme!r}")
    xq, xs = q8.quantize_fp8_token_group(x, block_size[1])
    out = aiter().gemm_a8w8_blockscale(xq, weight, xs, weight_scale.float(), x.dtype)
    return out if bias is None else out.add_(bias.to(out.dtype))


def register(registry) -> None:
    common = dict(priority=PRIORITY, available=why_unavailable)
    registry.register(
        "norm.rms", rms_norm, name="rocm.aiter_rms_norm", unsupported=_half_only, **common
    )
    registry.register(
        "moe.experts", moe_experts, name="rocm.aiter_fused_moe", unsupported=_half_only, **common
    )
    registry.register(
        "gemm.fp8",
        fp8_block,
        name="rocm.aiter_fp8_block",
        requires=("fp8:e4m3fn",),
        unsupported=_block_only,
        **common,
    )
