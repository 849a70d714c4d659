"""FP8 (quant_method "fp8", as transformers' FineGrainedFP8, DeepSeek-V3, Qwen3-FP8 and
SGLang's Fp8Config write it), FBGEMM's per-channel FP8, and `--quantization fp8` at load time.

Checkpoint tensors per linear layer:
  block (weight_block_size [bn, bk]): weight e4m3 [N, K], weight_scale_inv f32
      [ceil(N/bn), ceil(K/bk)] (a multiplier, despite the name); activations dynamic per token
      per group of bk.
  per-tensor (no weight_block_size): weight e4m3 [N, K], weight_scale f32 [] and, with
      activation_scheme "static", input_scale f32 []. A merged layer's shards keep their own
      scales. With dynamic activations they become one scale per output row (exact, as vLLM's
      convert_to_channelwise; the activations are then quantized per token, finer than per
      tensor); with static ones the shards are requantized to the largest scale (SGLang's
      requantize_with_max_scale: one more e4m3 rounding) and the input scales merged by max.
  per-channel (fbgemm_fp8, SGLang's w8a8_fp8): weight e4m3 [N, K], weight_scale f32 [N, 1];
      dynamic per token.
  load-time (--quantization fp8 on a float checkpoint): per-channel weights from the float
      weight, dynamic per-token activations; the LM head stays dense, as in SGLang.
"""

from __future__ import annotations

import math
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
from sglang.ops.quant import fp8 as q8

FP8 = torch.float8_e4m3fn
F32 = torch.float32


class Fp8Config(QuantizationConfig):
    name = "fp8"
    online = True

    def __init__(self, scheme: str, block: tuple[int, int] | None, static: bool, ignored) -> None:
        self.scheme, self.block, self.static, self.ignored = scheme, block, static, ignored

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Fp8Config:
        method = str(config.get("quant_method", "fp8")).lower()
        ignored = list(config.get("ignored_layers") or config.get("modules_to_not_convert") or [])
        if method in ("fbgemm_fp8", "w8a8_fp8"):  # per-channel weights, per-token activations
            return cls("per_channel", None, False, ignored)
        if set(config) <= {"quant_method"}:
            return cls("online", None, False, ignored)
        fmt = str(config.get("fmt", "e4m3")).lower()
        if fmt not in ("e4m3", "float8_e4m3fn"):
            raise QuantizationError(f"fp8 checkpoint format fmt={fmt!r}: only e4m3 is served")
        scheme = str(config.get("activation_scheme", "dynamic")).lower()
        if scheme not in ("dynamic", "static"):
            raise QuantizationError(f"fp8 activation_scheme {scheme!r}: dynamic or static")
        block = config.get("weight_block_size")
        if block is not None:
            if len(block) != 2 or scheme != "dynamic":
                raise QuantizationError(
                    f"fp8 weight_block_size {block} with activation_scheme {scheme!r}: block "
                    "scales take two sizes and dynamic activations"
                )
            return cls("block", (int(block[0]), int(block[1])), False, ignored)
        return cls("per_tensor", None, scheme == "static", ignored)

    def requires(self) -> tuple[str, ...]:
        return ("fp8:e4m3fn",)

    def describe(self) -> str:
        if self.scheme == "block":
            return f"fp8 (block {self.block[0]}x{self.block[1]})"
        if self.scheme == "per_tensor":
            return f"fp8 (per-tensor, {'static' if self.static else 'dynamic'} activations)"
        return f"fp8 ({'load-time, ' if self.scheme == 'online' else ''}per-channel)"

    def linear_method(self, prefix, layer) -> LinearMethod | None:
        if isinstance(layer, LMHead) or is_ignored(layer.checkpoint_prefixes(), self.ignored):
            return None
        return Fp8LinearMethod(self.scheme, self.block, self.static, self.describe())


class Fp8LinearMethod(LinearMethod):
    """scheme: "block", "per_tensor" (static or dynamic activations), "per_channel", or
    "online". block_scale: the block scales' checkpoint name (compressed-tensors calls them
    weight_scale)."""

    def __init__(
        self,
        scheme: str,
        block,
        static: bool,
        label: str,
        block_scale="weight_scale_inv",
        per_token: bool = False,
    ) -> None:
        super().__init__(op="gemm.fp8", label=label, requires=("fp8:e4m3fn",))
        self.scheme, self.block, self.static = scheme, block, static
        self.block_scale = block_scale
        self.per_token = per_token  # per-tensor weights, activations per token

    def params(self, layer) -> dict[str, ParamSpec]:
        n, k = layer.out_features, layer.in_features
        if self.scheme == "online":
            return {"weight": ParamSpec((n, k), layer.dtype, output_dim=0, input_dim=1)}
        specs = {"weight": ParamSpec((n, k), FP8, output_dim=0, input_dim=1)}
        if self.scheme == "block":
            bn, bk = self.block
            specs[self.block_scale] = ParamSpec(
                (math.ceil(n / bn), math.ceil(k / bk)),
                F32,
                output_dim=0,
                output_div=bn,
                input_dim=1,
                input_div=bk,
            )
        elif self.scheme == "per_channel":
            specs["weight_scale"] = ParamSpec((n, 1), F32, output_dim=0)
        else:
            shards = max(len(layer.shard_names()), 1)
            specs["weight_scale"] = ParamSpec((shards,), F32, per_shard=True)
            if self.static:
                specs["input_scale"] = ParamSpec((shards,), F32, per_shard=True)
        return specs

    def process(self, layer) -> dict[str, Any]:
        if self.scheme == "online":
            weight, scale = q8.quantize_fp8_rowwise(layer.weight.detach())
            return {"weight": weight, "weight_scale": scale.float(), "scheme": "per_channel"}
        weight = layer.weight.detach()
        if self.scheme == "block":
            return {
                "weight": weight,
                "weight_scale": getattr(layer, self.block_scale).detach(),
                "scheme": "block",
                "block_size": self.block,
            }
        if self.scheme == "per_channel":
            return {
                "weight": weight,
                "weight_scale": layer.weight_scale.detach().reshape(-1),
                "scheme": "per_channel",
            }
        scales = layer.weight_scale.detach()
        args = {"scheme": "per_tensor"}
        unequal = scales.numel() > 1 and not bool((scales == scales[0]).all())
        if self.per_token or (unequal and not self.static):
            sizes = [layer.shard_offsets[s][1] for s in layer.shard_names()]
            sizes = sizes or [layer.out_features]
            rows = [scales[i].expand(size) for i, size in enumerate(sizes)]
            return {
                "weight": weight,
                "weight_scale": torch.cat(rows).float(),
                "scheme": "per_channel",
            }
        if unequal:
            weight = requantize_to_max_scale(weight, scales, layer)
        args["weight"], args["weight_scale"] = weight, scales.max().reshape(1)
        if self.static:
            args["input_scale"] = layer.input_scale.detach().max().reshape(1)
        return args


def requantize_to_max_scale(weight: torch.Tensor, scales: torch.Tensor, layer) -> torch.Tensor:
    """A merged layer's shards, each e4m3 with its own per-tensor scale -> one e4m3 tensor on
    the largest scale (each shard dequantized in float32 and cast again)."""
    top = scales.max()
    out = torch.empty_like(weight)
    for i, shard in enumerate(layer.shard_names()):
        start, size = layer.shard_offsets[shard]
        rows = weight[start : start + size].float() * scales[i]
        out[start : start + size] = q8.quantize_fp8(rows, top)
    return out
