"""Per-layer KV cache scales as quantized checkpoints write them.

Names seen in the wild (vLLM's `maybe_remap_kv_scale_name` lists the same): ModelOpt and older
compressed-tensors put them on the projections (`self_attn.k_proj.k_scale`,
`self_attn.v_proj.v_scale`), newer compressed-tensors on the attention block
(`self_attn.k_scale`), some exports on the attention op (`self_attn.attn.k_scale`), and
older FP8 checkpoints one `kv_scale` for both. Each lands on the layer's `Attention` as a float
(`k_scale` / `v_scale`, 1.0 until loaded), which an fp8 KV cache divides by when it stores and
multiplies by when it reads.
"""

from __future__ import annotations

import re

import torch

_KV_SCALE = re.compile(
    r"^(?P<block>.*\.self_attn)\.(?:[kv]_proj\.|attn\.)?(?P<kind>k_scale|v_scale|kv_scale)$"
)


def is_kv_scale(name: str) -> bool:
    return _KV_SCALE.match(name) is not None


def load_kv_scale(modules: dict, name: str, tensor: torch.Tensor) -> None:
    """Set the scale on the attention op under the name's `self_attn` block."""
    found = _KV_SCALE.match(name)
    block, kind = found["block"], found["kind"]
    attn = modules.get(f"{block}.attn")
    if attn is None or not hasattr(attn, "k_scale"):
        raise ValueError(f"{name}: no attention layer at {block}.attn to take a KV cache scale")
    if tensor.numel() != 1:
        raise ValueError(
            f"{name}: a KV cache scale is one number, the checkpoint has "
            f"shape {tuple(tensor.shape)}"
        )
    value = float(tensor.float().reshape(()))
    if not value > 0:
        raise ValueError(f"{name}: KV cache scale {value} is not positive")
    for attr in ("k_scale", "v_scale") if kind == "kv_scale" else (kind,):
        setattr(attn, attr, value)
    attn.kv_scales_loaded = True


KV_CACHE_DTYPES = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}


def kv_cache_dtype(name: str, serving: torch.dtype) -> torch.dtype:
    """--kv-cache-dtype -> the cache buffers' dtype ("auto": the serving dtype)."""
    return serving if name == "auto" else KV_CACHE_DTYPES[name]


def set_kv_scales(model: torch.nn.Module, quantized: bool) -> str:
    """Hand each attention layer its scales when the cache is quantized; returns a phrase for
    the startup log (how many layers took the checkpoint's scales)."""
    from sglang.layers.attention import Attention

    layers = [m for m in model.modules() if isinstance(m, Attention)]
    for attn in layers:
        attn.kv_kwargs = {"k_scale": attn.k_scale, "v_scale": attn.v_scale} if quantized else {}
    if not quantized:
        return ""
    loaded = sum(a.kv_scales_loaded for a in layers)
    if loaded:
        return f"k/v scales from the checkpoint on {loaded} of {len(layers)} layers"
    return "no k/v scales in the checkpoint: scale 1.0 (values past the type's range saturate)"
