"""SGLang's w8a8_int8 checkpoints (quant_method "w8a8_int8", from its slim-quant tooling):
weight int8 [N, K] symmetric per output channel, weight_scale [N, 1]; activations quantized
per token at run time -> gemm.int8 (the same layout as compressed-tensors' W8A8-INT8)."""

from __future__ import annotations

from typing import Any

from sglang.layers.embedding import LMHead
from sglang.layers.quantization.base import LinearMethod, QuantizationConfig, is_ignored
from sglang.layers.quantization.compressed_tensors import Int8ChannelMethod


class Int8Config(QuantizationConfig):
    name = "w8a8_int8"

    def __init__(self, ignored: list[str]) -> None:
        self.ignored = ignored

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Int8Config:
        return cls(list(config.get("ignore") or config.get("modules_to_not_convert") or []))

    def requires(self) -> tuple[str, ...]:
        return ("int8:w8a8",)

    def describe(self) -> str:
        return "w8a8_int8 (per-channel weights, per-token activations)"

    def linear_method(self, prefix, layer) -> LinearMethod | None:
        if isinstance(layer, LMHead) or is_ignored(layer.checkpoint_prefixes(), self.ignored):
            return None
        return Int8ChannelMethod("w8a8_int8")
