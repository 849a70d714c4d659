"""AWQ (quant_method "awq", AutoAWQ's GEMM version): 4-bit weights with zero points.

Checkpoint tensors per linear layer (K input, N output features, G group_size):
  qweight int32 [K, N/8], qzeros int32 [K/G, N/8] (both packed along N in AWQ's interleaved
  nibble order), scales float16 [K/G, N]; w[k, n] = (q - z[k // G]) * s[k // G]. This is
  gemm.int4's "awq" packing as it is (sglang.ops.quant.int4).
"""

from __future__ import annotations

from typing import Any

import torch

from sglang.layers.embedding import LMHead
from sglang.layers.quantization.base import (
    LinearMethod,
    ParamSpec,
    QuantizationConfig,
    QuantizationError,
    is_ignored,
)

PACK = 8  # 4-bit values per int32


class AwqConfig(QuantizationConfig):
    name = "awq"

    def __init__(self, group_size: int, ignored: list[str]) -> None:
        self.group_size, self.ignored = group_size, ignored

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AwqConfig:
        bits = int(config.get("bits", config.get("w_bit", 4)))
        version = str(config.get("version", "gemm")).lower()
        if bits != 4:
            raise QuantizationError(f"awq with bits={bits}: only 4-bit AWQ exists")
        if version != "gemm":
            raise QuantizationError(
                f"awq version {version!r}: only the GEMM packing is served (GEMV, Marlin and "
                "exllama exports reorder the words differently)"
            )
        if not config.get("zero_point", True):
            raise QuantizationError("awq with zero_point false: AutoAWQ's GEMM format has zeros")
        group = int(config.get("group_size", config.get("q_group_size", 128)))
        return cls(group, list(config.get("modules_to_not_convert") or []))

    def requires(self) -> tuple[str, ...]:
        return ("int4:awq",)

    def describe(self) -> str:
        return f"awq (4-bit, group {self.group_size})"

    def linear_method(self, prefix, layer) -> LinearMethod | None:
        if isinstance(layer, LMHead) or is_ignored(layer.checkpoint_prefixes(), self.ignored):
            return None
        return AwqLinearMethod(self.group_size, self.describe())


class AwqLinearMethod(LinearMethod):
    def __init__(self, group_size: int, label: str) -> None:
        super().__init__(op="gemm.int4", label=label, requires=("int4:awq",))
        self.group_size = group_size

    def params(self, layer) -> dict[str, ParamSpec]:
        n, k, g = layer.out_features, layer.in_features, self.group_size
        if k % g or n % PACK:
            raise QuantizationError(
                f"{layer.prefix}: AWQ needs in_features ({k}) a multiple of the group size "
                f"{g} and out_features ({n}) a multiple of {PACK}"
            )
        return {
            "qweight": ParamSpec(
                (k, n // PACK), torch.int32, output_dim=1, output_div=PACK, input_dim=0
            ),
            "qzeros": ParamSpec(
                (k // g, n // PACK),
                torch.int32,
                output_dim=1,
                output_div=PACK,
                input_dim=0,
                input_div=g,
            ),
            "scales": ParamSpec((k // g, n), torch.float16, output_dim=1, input_dim=0, input_div=g),
        }

    def process(self, layer) -> dict[str, Any]:
        return {
            "qweight": layer.qweight.detach(),
            "scales": layer.scales.detach().to(layer.dtype),
            "qzeros": layer.qzeros.detach(),
            "packing": "awq",
            "group_size": self.group_size,
        }
