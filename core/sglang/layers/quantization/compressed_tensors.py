"""compressed-tensors (quant_method "compressed-tensors", what llm-compressor writes).

The config holds `config_groups`, each a scheme (weights / input_activations arguments) with
`targets` (module class names such as "Linear", or "re:" regexes over module names), an
`ignore` list and a `format`. Per linear layer, by scheme:

  W8A8-FP8    weight e4m3 [N, K]; weight_scale [N, 1] (channel), [1] (tensor) or
              [N/bn, K/bk] (block); input_scale [1] for static tensor activations, none for
              dynamic per-token ones                                     -> gemm.fp8
  W8A8-INT8   weight int8 [N, K], weight_scale [N, 1]; activations dynamic per token
                                                                         -> gemm.int8
  W4A16       "pack-quantized": weight_packed int32 [N, K/8] (eight values per word along K,
              value i in bits [4i, 4i + 4), stored + 8), weight_scale [N, K/G],
              weight_shape [2], weight_zero_point int32 [N/8, K/G] (asymmetric: packed along
              N, + 8), weight_g_idx [K] (actorder "group")             -> gemm.int4 (gptq)
  NVFP4       "nvfp4-pack-quantized": weight_packed uint8 [N, K/2], weight_scale e4m3
              [N, K/16], weight_global_scale [1] (a divisor: 448 * 6 / amax),
              input_global_scale [1]                                      -> gemm.fp4
Layouts checked against compressed-tensors 0.20 (compressors/pack_quantized/helpers.py
pack_to_int32, compressors/nvfp4, quantization/utils/helpers.py generate_gparam). NVFP4's
activations (W4A4) are not quantized here: gemm.fp4 is W4A16, the 16-bit activations are the
more precise of the two.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from sglang.layers.quantization.base import (
    LinearMethod,
    ParamSpec,
    QuantizationConfig,
    QuantizationError,
    is_ignored,
)
from sglang.layers.quantization.fp8 import Fp8LinearMethod
from sglang.layers.quantization.gptq import plain_g_idx, whole_groups
from sglang.ops.quant import int4 as q4

FORMATS = (
    "float-quantized",
    "int-quantized",
    "naive-quantized",
    "pack-quantized",
    "nvfp4-pack-quantized",
)


class CompressedTensorsConfig(QuantizationConfig):
    name = "compressed-tensors"

    def __init__(self, groups: list[tuple[list[str], dict, str]], ignore: list[str]) -> None:
        self.groups, self.ignore = groups, ignore
        self.kinds = sorted({scheme_kind(s, f) for _, s, f in groups})

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CompressedTensorsConfig:
        status = config.get("quantization_status", "compressed")
        if status not in ("compressed", "frozen"):
            raise QuantizationError(
                f"compressed-tensors quantization_status {status!r}: only compressed "
                "checkpoints are served"
            )
        default_format = config.get("format", "naive-quantized")
        groups = []
        for name, group in (config.get("config_groups") or {}).items():
            fmt = group.get("format") or default_format
            if fmt not in FORMATS:
                raise QuantizationError(
                    f"compressed-tensors group {name}: format {fmt!r} is not served "
                    f"(served: {', '.join(FORMATS)})"
                )
            scheme_kind(group, fmt)  # refuses unknown schemes now, not at load
            groups.append((list(group.get("targets") or []), group, fmt))
        if not groups:
            raise QuantizationError("compressed-tensors config without config_groups")
        return cls(groups, list(config.get("ignore") or []))

    def requires(self) -> tuple[str, ...]:
        keys = {
            "fp8": ("fp8:e4m3fn",),
            "int8": ("int8:w8a8",),
            "w4a16": ("int4:gptq",),
            "w4a16-actorder": ("int4:gptq", "int4:gptq_act_order"),
            "w4a16-asym": ("int4:awq",),
            "nvfp4": ("fp4:nvfp4",),
        }
        return tuple(sorted({k for kind in self.kinds for k in keys.get(kind, ())}))

    def describe(self) -> str:
        return f"compressed-tensors ({', '.join(self.kinds)})"

    def linear_method(self, prefix, layer) -> LinearMethod | None:
        names = layer.checkpoint_prefixes()
        if is_ignored(names, self.ignore):
            return None
        found = None
        for targets, scheme, fmt in self.groups:
            if any(_targets(t, names, layer) for t in targets):
                found = (scheme, fmt)
                break
        if found is None:
            return None
        return method_for(*found)


def _targets(target: str, names: list[str], layer) -> bool:
    if target.startswith("re:"):
        return any(re.match(target[3:], n) for n in names)
    return target in ("Linear", type(layer).__name__) or target in names


def _args(scheme: dict, key: str) -> dict | None:
    value = scheme.get(key)
    return dict(value) if value else None


def scheme_kind(scheme: dict, fmt: str) -> str:
    w, a = _args(scheme, "weights"), _args(scheme, "input_activations")
    if w is None:
        raise QuantizationError("compressed-tensors scheme without weights arguments")
    kind = (w.get("type"), int(w.get("num_bits", 0)))
    if kind == ("float", 8):
        if a is None or a.get("type") != "float":
            raise QuantizationError("compressed-tensors FP8 weights need FP8 activations (W8A8)")
        return "fp8"
    if kind == ("int", 8) and a is not None:
        if a.get("num_bits") != 8 or not a.get("dynamic") or a.get("strategy") != "token":
            raise QuantizationError(
                "compressed-tensors W8A8-INT8 is served with dynamic per-token activations"
            )
        if not w.get("symmetric", True) or w.get("strategy") != "channel":
            raise QuantizationError("compressed-tensors W8A8-INT8 needs symmetric channel weights")
        return "int8"
    if kind == ("int", 4) and a is None and fmt == "pack-quantized":
        if w.get("strategy") not in ("group", "channel"):
            raise QuantizationError(f"compressed-tensors W4A16 strategy {w.get('strategy')!r}")
        if not w.get("symmetric", True):
            return "w4a16-asym"
        return "w4a16-actorder" if w.get("actorder") == "group" else "w4a16"
    if kind == ("float", 4) and fmt == "nvfp4-pack-quantized":
        return "nvfp4"
    raise QuantizationError(
        f"compressed-tensors scheme {w.get('type')} {w.get('num_bits')}-bit weights with "
        f"{'no' if a is None else str(a.get('type')) + ' ' + str(a.get('num_bits')) + '-bit'} "
        f"activations in format {fmt!r} is not served"
    )


def method_for(scheme: dict, fmt: str) -> LinearMethod:
    kind = scheme_kind(scheme, fmt)
    w, a = _args(scheme, "weights"), _args(scheme, "input_activations")
    label = f"compressed-tensors {kind}"
    if kind == "fp8":
        strategy = w.get("strategy")
        if strategy == "block":
            bn, bk = w.get("block_structure") or (128, 128)
            return Fp8LinearMethod(
                "block", (int(bn), int(bk)), False, label, block_scale="weight_scale"
            )
        if strategy == "channel":
            return Fp8LinearMethod("per_channel", None, False, label)
        if strategy == "tensor":
            static = not a.get("dynamic", False)
            if static and a.get("strategy") != "tensor":
                raise QuantizationError("compressed-tensors FP8: static activations per tensor")
            per_token = not static and a.get("strategy") == "token"
            return Fp8LinearMethod("per_tensor", None, static, label, per_token=per_token)
        raise QuantizationError(f"compressed-tensors FP8 weight strategy {strategy!r}")
    if kind == "int8":
        return Int8ChannelMethod(label)
    if kind == "nvfp4":
        return Nvfp4Method(label, scale_name="weight_global_scale", divisor=True)
    group = int(w.get("group_size") or -1) if w.get("strategy") == "group" else -1
    return PackedInt4Method(
        label, group, symmetric=kind != "w4a16-asym", act_order=kind == "w4a16-actorder"
    )


class Int8ChannelMethod(LinearMethod):
    """W8A8 int8: weight int8 [N, K], weight_scale [N, 1]; activations per token."""

    def __init__(self, label: str) -> None:
        super().__init__(op="gemm.int8", label=label, requires=("int8:w8a8",))

    def params(self, layer) -> dict[str, ParamSpec]:
        n, k = layer.out_features, layer.in_features
        return {
            "weight": ParamSpec((n, k), torch.int8, output_dim=0, input_dim=1),
            "weight_scale": ParamSpec((n, 1), torch.float32, output_dim=0),
        }

    def process(self, layer) -> dict[str, Any]:
        return {
            "weight": layer.weight.detach(),
            "weight_scale": layer.weight_scale.detach().reshape(-1).float(),
        }


class PackedInt4Method(LinearMethod):
    """pack-quantized 4-bit -> gemm.int4: weight_packed [N, K/8] is, transposed, GPTQ's
    qweight [K/8, N] (both put value i of a word at bits 4i, along K); the +8 offset is a zero
    point of 8 (symmetric) or the stored zero point + 8."""

    def __init__(self, label: str, group: int, symmetric: bool, act_order: bool) -> None:
        requires = ("int4:gptq", "int4:gptq_act_order") if act_order else ("int4:gptq",)
        if not symmetric:
            requires = ("int4:awq",)
        super().__init__(op="gemm.int4", label=label, requires=requires)
        self.group, self.symmetric, self.act_order = group, symmetric, act_order

    def _group(self, layer) -> int:
        return layer.in_features if self.group == -1 else self.group

    def params(self, layer) -> dict[str, ParamSpec]:
        n, k = layer.out_features, layer.in_features
        g = self._group(layer)
        if k % g or k % 8 or n % 8:
            raise QuantizationError(
                f"{layer.prefix}: pack-quantized int4 needs in_features ({k}) a multiple of "
                f"{g} and of 8, out_features ({n}) a multiple of 8"
            )
        groups, by_cols = k // g, {"input_dim": 1, "input_div": g}
        if self.group == -1:
            by_cols = {}
        elif whole_groups(layer, self.act_order):
            groups, by_cols = layer.in_features * layer.tp.size // g, {}
        specs = {
            "weight_packed": ParamSpec(
                (n, k // 8), torch.int32, output_dim=0, input_dim=1, input_div=8
            ),
            "weight_scale": ParamSpec((n, groups), layer.dtype, output_dim=0, **by_cols),
            "weight_shape": ParamSpec(
                (max(len(layer.shard_names()), 1), 2), torch.int64, per_shard=True, optional=True
            ),
            "weight_g_idx": ParamSpec((k,), torch.int32, optional=True, input_dim=0),
        }
        if not self.symmetric:
            specs["weight_zero_point"] = ParamSpec(
                (n // 8, groups), torch.int32, output_dim=0, output_div=8, **by_cols
            )
        return specs

    def process(self, layer) -> dict[str, Any]:
        g = self._group(layer)
        scales = layer.weight_scale.detach().t().contiguous().to(layer.dtype)  # [K/G, N]
        g_idx = layer.weight_g_idx.detach() if self.has(layer, "weight_g_idx") else None
        g_idx = plain_g_idx(layer, g_idx, g, self.act_order)
        qweight = layer.weight_packed.detach().t().contiguous()  # [K/8, N], GPTQ's layout
        if self.symmetric:
            zeros = torch.full(scales.shape, 8, dtype=torch.int32, device=scales.device)
            qzeros = q4.pack_nibbles(zeros - 1)  # GPTQ v1 stores zero - 1
            args = {
                "qweight": qweight,
                "scales": scales,
                "qzeros": qzeros,
                "packing": "gptq",
                "group_size": g,
            }
            if g_idx is not None:
                args["g_idx"] = g_idx
            return args
        zp = q4.unpack_nibbles(layer.weight_zero_point.detach().t().contiguous()).t()  # [N, K/G]
        zeros = zp.t().contiguous()  # [K/G, N], offset + 8 already (unsigned nibbles)
        q = q4.unpack_nibbles(qweight.t().contiguous()).t()  # [K, N] codes 0..15
        if g_idx is not None:
            return {
                "qweight": q4.pack_qweight(q, "gptq"),
                "scales": scales,
                "qzeros": zeros.to(layer.dtype),
                "packing": "gptq",
                "group_size": g,
                "g_idx": g_idx,
            }
        qweight, qzeros = q4.pack_awq(q, zeros)
        return {
            "qweight": qweight,
            "scales": scales,
            "qzeros": qzeros,
            "packing": "awq",
            "group_size": g,
        }


class Nvfp4Method(LinearMethod):
    """NVFP4 -> gemm.fp4: weight (packed codes) uint8 [N, K/2], weight_scale e4m3 [N, K/16],
    one global scale per shard: ModelOpt's weight_scale_2 (a multiplier) or compressed-tensors'
    weight_global_scale (a divisor). A merged layer whose shards' global scales differ folds
    the ratio into the block scales (one e4m3 rounding), as the op takes one."""

    def __init__(
        self,
        label: str,
        scale_name: str,
        divisor: bool,
        weight_name="weight_packed",
        extra: tuple[str, ...] = ("input_global_scale",),
    ) -> None:
        super().__init__(op="gemm.fp4", label=label, requires=("fp4:nvfp4",))
        self.scale_name, self.divisor, self.weight_name, self.extra = (
            scale_name,
            divisor,
            weight_name,
            extra,
        )

    def params(self, layer) -> dict[str, ParamSpec]:
        n, k = layer.out_features, layer.in_features
        if k % 16:
            raise QuantizationError(f"{layer.prefix}: NVFP4 needs in_features ({k}) % 16 == 0")
        shards = max(len(layer.shard_names()), 1)
        specs = {
            self.weight_name: ParamSpec(
                (n, k // 2), torch.uint8, output_dim=0, input_dim=1, input_div=2
            ),
            "weight_scale": ParamSpec(
                (n, k // 16), torch.float8_e4m3fn, output_dim=0, input_dim=1, input_div=16
            ),
            self.scale_name: ParamSpec((shards,), torch.float32, per_shard=True, fill=1.0),
        }
        for name in self.extra:  # activation scales of W4A4: not used by a W4A16 op
            specs[name] = ParamSpec((shards,), torch.float32, per_shard=True, optional=True)
        return specs

    def process(self, layer) -> dict[str, Any]:
        glob = getattr(layer, self.scale_name).detach().float()
        if self.divisor:
            glob = 1.0 / glob
        scale = layer.weight_scale.detach()
        top = glob.max()
        if glob.numel() > 1 and not bool((glob == top).all()):
            rows = torch.cat(
                [
                    glob[i].expand(layer.shard_offsets[s][1])
                    for i, s in enumerate(layer.shard_names())
                ]
            )
            scale = (scale.float() * (rows / top).unsqueeze(1)).to(torch.float8_e4m3fn)
        return {
            "weight": getattr(layer, self.weight_name).detach(),
            "weight_scale": scale,
            "format": "nvfp4",
            "global_scale": top.reshape(()),
        }
