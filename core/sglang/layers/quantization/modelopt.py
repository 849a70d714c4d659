"""NVIDIA ModelOpt exports (quant_method "modelopt": hf_quant_config.json's `quantization`
section, or config.json's quantization_config in newer exports), `quant_algo`:

  FP8     weight e4m3 [N, K], weight_scale f32 [], input_scale f32 [] (static per tensor)
          -> gemm.fp8 per tensor, static activations (merged shards: see fp8.py)
  NVFP4   weight uint8 [N, K/2] (two e2m1 codes a byte, low nibble = even k), weight_scale
          e4m3 [N, K/16], weight_scale_2 f32 [] (a multiplier: amax / (6 * 448)),
          input_scale f32 [] -> gemm.fp4 nvfp4 (16-bit activations, see compressed_tensors)
`exclude_modules` names layers left in the float dtype (globs allowed: "*lm_head*").
KV cache scales (`kv_cache_quant_algo` FP8) come as k_proj.k_scale / v_proj.v_scale.
"""

from __future__ import annotations

from typing import Any

from sglang.layers.embedding import LMHead
from sglang.layers.quantization.base import (
    LinearMethod,
    QuantizationConfig,
    QuantizationError,
    is_ignored,
)
from sglang.layers.quantization.compressed_tensors import Nvfp4Method
from sglang.layers.quantization.fp8 import Fp8LinearMethod

ALGOS = ("FP8", "NVFP4")


class ModelOptConfig(QuantizationConfig):
    name = "modelopt"

    def __init__(self, algo: str, exclude: list[str], group_size: int) -> None:
        self.algo, self.exclude, self.group_size = algo, exclude, group_size

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelOptConfig:
        section = config.get("quantization", config)
        algo = str(section.get("quant_algo", "")).upper()
        if algo not in ALGOS:
            raise QuantizationError(
                f"modelopt quant_algo {section.get('quant_algo')!r} is not served "
                f"(served: {', '.join(ALGOS)})"
            )
        group = int(section.get("group_size", 16))
        if algo == "NVFP4" and group != 16:
            raise QuantizationError(f"modelopt NVFP4 with group_size {group}: NVFP4 blocks are 16")
        exclude = list(section.get("exclude_modules") or section.get("ignore") or [])
        return cls(algo, exclude, group)

    def requires(self) -> tuple[str, ...]:
        return ("fp8:e4m3fn",) if self.algo == "FP8" else ("fp4:nvfp4",)

    def describe(self) -> str:
        return f"modelopt {self.algo.lower()}"

    def linear_method(self, prefix, layer) -> LinearMethod | None:
        names = layer.checkpoint_prefixes()
        if is_ignored(names, self.exclude) or (
            isinstance(layer, LMHead) and not any("lm_head" in n for n in names)
        ):
            return None
        if self.algo == "FP8":
            return Fp8LinearMethod("per_tensor", None, True, self.describe())
        return Nvfp4Method(
            self.describe(),
            scale_name="weight_scale_2",
            divisor=False,
            weight_name="weight",
            extra=("input_scale",),
        )
