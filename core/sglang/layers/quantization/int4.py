"""`--quantization int4`: group-wise int4 of every linear layer at load time (the LM head
included), through gemm.int4 (see sglang.layers.linear.int4_weight_args)."""

from __future__ import annotations

from typing import Any

from sglang.layers.linear import INT4_GROUP_SIZE, can_quantize_int4, int4_weight_args
from sglang.layers.quantization.base import LinearMethod, ParamSpec, QuantizationConfig


class Int4Config(QuantizationConfig):
    name = "int4"
    online = True

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Int4Config:
        return cls()

    def requires(self) -> tuple[str, ...]:
        return ("int4:awq",)

    def describe(self) -> str:
        return f"int4 (load-time, group {INT4_GROUP_SIZE})"

    def linear_method(self, prefix, layer) -> LinearMethod | None:
        if not can_quantize_int4(layer.out_features, layer.in_features, INT4_GROUP_SIZE):
            return None
        return Int4LoadTimeMethod(op="gemm.int4", label=self.describe(), requires=self.requires())


class Int4LoadTimeMethod(LinearMethod):
    def params(self, layer) -> dict[str, ParamSpec]:
        return {
            "weight": ParamSpec(
                (layer.out_features, layer.in_features), layer.dtype, output_dim=0, input_dim=1
            )
        }

    def process(self, layer) -> dict[str, Any]:
        # A stand-in layer without ops (a MoE expert projection, quantization.experts): float
        # zero points, which moe.experts' int4 experts and the dequantized experts both take.
        float_zeros = layer.ops is None or "int4:float_zeros" in layer.ops.features
        return int4_weight_args(layer.weight.detach(), float_zeros=float_zeros)
