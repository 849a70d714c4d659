"""MXFP4 as gpt-oss ships it (quant_method "mxfp4"): only the MoE experts are 4-bit.

Per expert projection `<name>` (gate_up_proj, down_proj) the checkpoint has
  <name>_blocks  uint8 [E, N, K/32, 16]: 32 e2m1 codes per block, two a byte, low nibble first
  <name>_scales  uint8 [E, N, K/32]: e8m0 exponents, value 2 ** (s - 127)
(transformers' integrations/mxfp4.py `convert_moe_packed_tensors` dequantizes the same way),
which is gemm.fp4's "mxfp4" layout once the blocks are flattened along K. Attention, router,
embeddings and head stay in the float dtype (`modules_to_not_convert`), so no dense linear
layer gets a method here; MoE layers take their weights through `expert_weight_args`.
"""

from __future__ import annotations

from typing import Any

import torch

from sglang.layers.quantization.base import LinearMethod, QuantizationConfig


class Mxfp4Config(QuantizationConfig):
    name = "mxfp4"

    def __init__(self, not_converted: list[str]) -> None:
        self.not_converted = not_converted

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Mxfp4Config:
        return cls(list(config.get("modules_to_not_convert") or []))

    def requires(self) -> tuple[str, ...]:
        return ("fp4:mxfp4",)

    def describe(self) -> str:
        return "mxfp4 (gpt-oss experts)"

    def linear_method(self, prefix, layer) -> LinearMethod | None:
        return None  # gpt-oss's dense layers are not quantized


def expert_weight_args(blocks: torch.Tensor, scales: torch.Tensor) -> dict[str, Any]:
    """gpt-oss `<name>_blocks` [E, N, K/32, 16] and `<name>_scales` [E, N, K/32] -> gemm.fp4
    weight arguments per expert stacked: weight uint8 [E, N, K/2], weight_scale uint8
    [E, N, K/32], format "mxfp4" (weight e of the stack is expert e's [N, K/2])."""
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise ValueError(f"mxfp4 blocks/scales must be uint8, got {blocks.dtype}/{scales.dtype}")
    if (
        blocks.dim() != 4
        or blocks.shape[-1] != 16
        or tuple(blocks.shape[:3]) != tuple(scales.shape)
    ):
        raise ValueError(
            f"mxfp4 blocks {tuple(blocks.shape)} and scales {tuple(scales.shape)}: expected "
            "[E, N, K/32, 16] and [E, N, K/32]"
        )
    e, n, groups, _ = blocks.shape
    return {
        "weight": blocks.reshape(e, n, groups * 16),
        "weight_scale": scales,
        "format": "mxfp4",
    }
