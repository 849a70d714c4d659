"""GPTQ (quant_method "gptq", AutoGPTQ / GPTQModel / optimum exports): 4- and 8-bit, symmetric
or not, with act-order (desc_act) group indices.

Checkpoint tensors per linear layer (K input, N output features, G group_size, -1 = K; b bits,
p = 32 / b values per int32):
  qweight int32 [K/p, N] packed along K, value i of a word in bits [b*i, b*i + b);
  qzeros int32 [K/G, N/p] packed along N the same way, storing zero - 1 (checkpoint_format
    "gptq", v1) or the zero itself ("gptq_v2");
  scales float16 [K/G, N]; g_idx int32 [K] (group of each input row; act-order permutes it).
  w[k, n] = (q[k, n] - z[g_idx[k], n]) * s[g_idx[k], n].
4-bit is gemm.int4's "gptq" packing (v1 zeros; v2 zeros become v1, or float zero points when
one is 0). 8-bit has no W8A16 op yet: its weights are dequantized at load to the serving dtype
and run through gemm.dense (said so in the startup log).
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
from sglang.ops.quant import int4 as q4


def whole_groups(layer, act_order: bool) -> bool:
    """A row-parallel layer of an act-order checkpoint keeps every group's scales."""
    return act_order and layer.parallel == "row"


def plain_g_idx(layer, g_idx, g: int, act_order: bool):
    """None when `g_idx` (this rank's rows) is the sequential layout of this rank's groups,
    so the kernel takes the plain path; else g_idx (rebased to this rank's first group when
    the rank holds only its own groups' scales)."""
    if g_idx is None:
        return None
    if whole_groups(layer, act_order):
        return g_idx  # it indexes all groups: kept even where sequential
    k = layer.in_features
    if g_idx.numel() == k:
        g_idx = g_idx - layer.input_offset // g
    if torch.equal(g_idx.long(), q4.default_g_idx(k, g, g_idx.device)):
        return None
    return g_idx


class GptqConfig(QuantizationConfig):
    name = "gptq"

    def __init__(self, bits: int, group_size: int, desc_act: bool, v2: bool, ignored) -> None:
        self.bits, self.group_size, self.desc_act, self.v2 = bits, group_size, desc_act, v2
        self.ignored = ignored

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GptqConfig:
        bits = int(config.get("bits", 4))
        if bits not in (4, 8):
            raise QuantizationError(f"gptq with bits={bits}: 4 and 8 are served")
        fmt = str(config.get("checkpoint_format", "gptq")).lower()
        if fmt not in ("gptq", "gptq_v2"):
            raise QuantizationError(f"gptq checkpoint_format {fmt!r}: gptq or gptq_v2")
        ignored = list(config.get("modules_to_not_convert") or [])
        ignored += [k for k, v in (config.get("dynamic") or {}).items() if k.startswith("-:")]
        return cls(
            bits,
            int(config.get("group_size", 128)),
            bool(config.get("desc_act")),
            fmt == "gptq_v2",
            [p.removeprefix("-:") for p in ignored],
        )

    def requires(self) -> tuple[str, ...]:
        if self.bits == 8:
            return ()
        return ("int4:gptq", "int4:gptq_act_order") if self.desc_act else ("int4:gptq",)

    def describe(self) -> str:
        group = "per channel" if self.group_size == -1 else f"group {self.group_size}"
        act = ", act-order" if self.desc_act else ""
        return f"gptq ({self.bits}-bit, {group}{act})"

    def linear_method(self, prefix, layer) -> LinearMethod | None:
        if isinstance(layer, LMHead) or is_ignored(layer.checkpoint_prefixes(), self.ignored):
            return None
        return GptqLinearMethod(self, self.describe())


class GptqLinearMethod(LinearMethod):
    def __init__(self, config: GptqConfig, label: str) -> None:
        op = "gemm.int4" if config.bits == 4 else "gemm.dense"
        if config.bits == 8:
            label += " dequantized at load: no W8A16 op"
        super().__init__(op=op, label=label, requires=config.requires())
        self.config = config

    def params(self, layer) -> dict[str, ParamSpec]:
        cfg = self.config
        n, k = layer.out_features, layer.in_features
        g = k if cfg.group_size == -1 else cfg.group_size
        per = 32 // cfg.bits
        if k % g or k % per or n % per:
            raise QuantizationError(
                f"{layer.prefix}: GPTQ {cfg.bits}-bit needs in_features ({k}) a multiple of the "
                f"group size {g} and of {per}, and out_features ({n}) a multiple of {per}"
            )
        # Row-parallel: each rank's input rows, with their groups' scales and zeros, unless
        # act-order scatters a rank's rows over every group (then all groups are kept, and
        # g_idx, split by rows, still names them; as SGLang does).
        groups, by_rows = k // g, {"input_dim": 0, "input_div": g}
        if cfg.group_size == -1:
            by_rows = {}  # one group: every rank needs it
        elif whole_groups(layer, cfg.desc_act):
            groups, by_rows = layer.in_features * layer.tp.size // g, {}
        return {
            "qweight": ParamSpec(
                (k // per, n), torch.int32, output_dim=1, input_dim=0, input_div=per
            ),
            "qzeros": ParamSpec(
                (groups, n // per), torch.int32, output_dim=1, output_div=per, **by_rows
            ),
            "scales": ParamSpec((groups, n), torch.float16, output_dim=1, **by_rows),
            "g_idx": ParamSpec((k,), torch.int32, optional=True, input_dim=0),
        }

    def dummy_fill(self, layer, gen: torch.Generator) -> None:
        """Act-order: a random g_idx as GPTQ writes one (each group's G input features
        anywhere in this rank's rows, which hold groups rank * K/G ... of the whole layer)."""
        cfg = self.config
        if not cfg.desc_act or getattr(layer, "g_idx", None) is None:
            return
        k = layer.in_features
        g = k if cfg.group_size == -1 else cfg.group_size
        first = layer.input_offset // g if whole_groups(layer, True) else 0
        order = torch.randperm(k, generator=gen)
        g_idx = torch.empty(k, dtype=torch.int32)
        g_idx[order] = (torch.arange(k, dtype=torch.int32) // g + first).to(torch.int32)
        layer.g_idx.data.copy_(g_idx)

    def process(self, layer) -> dict[str, Any]:
        cfg = self.config
        k = layer.in_features
        g = k if cfg.group_size == -1 else cfg.group_size
        # Without desc_act the groups are sequential whatever g_idx says (vLLM ignores it too;
        # --load-format dummy leaves it zero).
        g_idx = layer.g_idx.detach() if cfg.desc_act and self.has(layer, "g_idx") else None
        g_idx = plain_g_idx(layer, g_idx, g, cfg.desc_act)
        scales = layer.scales.detach().to(layer.dtype)
        if cfg.bits == 8:
            return {"weight": dequantize_gptq8(layer, scales, g_idx, g)}
        qweight, qzeros = layer.qweight.detach(), layer.qzeros.detach()
        if cfg.v2:
            zeros = q4.unpack_nibbles(qzeros)
            if int(zeros.min()) >= 1:
                qzeros = q4.pack_nibbles(zeros - 1)
            else:  # a zero point of 0 has no v1 form: float zero points hold it exactly
                qzeros = zeros.to(layer.dtype)
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


def _unpack_bytes(words: torch.Tensor) -> torch.Tensor:
    """int32 [R, C] -> int32 [R, C, 4]: byte i of each word (bits [8i, 8i + 8))."""
    shifts = torch.arange(0, 32, 8, dtype=torch.int32, device=words.device)
    return (words.unsqueeze(-1) >> shifts) & 0xFF


def dequantize_gptq8(layer, scales: torch.Tensor, g_idx, g: int) -> torch.Tensor:
    """8-bit GPTQ -> the float weight [N, K] in the serving dtype."""
    k = layer.in_features
    q = _unpack_bytes(layer.qweight.detach().t()).reshape(layer.out_features, k).t()  # [K, N]
    zeros = _unpack_bytes(layer.qzeros.detach()).reshape(scales.shape)
    if not layer.quant_method.config.v2:
        zeros = zeros + 1
    gi = g_idx.long() if g_idx is not None else q4.default_g_idx(k, g, q.device).long()
    w = (q.float() - zeros.float()[gi]) * scales.float()[gi]
    return w.t().contiguous().to(layer.dtype)
