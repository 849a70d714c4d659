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
