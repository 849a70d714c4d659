"""GGUF served quantized: each linear layer runs on its file's own codes, never re-quantized.

The loader reads every block-typed tensor into codes, scales and zeros
(sglang.model_loader.gguf_blocks), exactly. `plan_quantization` then gives each linear layer
whose weight came whole from such tensors the op that runs those codes (SGLang's
`--quantization gguf`, the default for a GGUF file):

- 4-bit types (Q4_0, Q4_1, Q4_K), one group size, zeros within INT4_MAX_ZERO: gemm.int4, AWQ
  packing, float zero points ("int4:float_zeros"), scales and zeros in the serving dtype;
  where the backend declares "int4:w4a8" and the serving dtype is bfloat16, the same arguments
  on gemm.w4a8 instead: activations quantized to int8 per block of the group size, as
  llama.cpp's own CPU dot product for these types does (Q4_1 x Q8_1). Not for float32 or
  float16 serving, which asked for wider activations than 8 bits;
- any other mix (Q5_0/1, Q5_K, Q6_K, Q8_0, or 4-bit shards merged with those): gemm.w8a16, the
  codes as int8, group size the smallest of the shards' (a group of 32 is two of 16, same
  scale), float32 scales and zeros.

A layer with a float shard (F16, F32, BF16), or a tensor the architecture's processor does
more to than reorder rows, stays dense. A tied LM head runs on its embedding's codes (Q8_0 in
most files: gemm.w8a16). `--quantization int4` instead quantizes every linear layer afresh.
The model still allocates its float parameters and the loader fills them (the dense
fallback), but a quantized layer drops its float weight at prepare: what stays is the codes.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from sglang.model_loader.gguf_blocks import BlockQuant

GGUF = "gguf"
# gemm.int4 holds zero points in the serving dtype: bfloat16 rounds a zero of 16 by 2^-5 of a
# code step at most. A quantizer centres each grid (z ~ 8 for 4 bits); a group far off centre
# (all its weights of one sign) sends the layer to gemm.w8a16, whose zeros are float32.
INT4_MAX_ZERO = 16.0


@dataclass(frozen=True)
class QuantizationPlan:
    method: str | None  # "int4" (--quantization), "gguf" (the file's codes), None for none
    reason: str  # for the startup log
    # id() of a Linear -> (op, its weight arguments) for layers served on the file's codes
    layer_args: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)


def plan_quantization(
    asked: str | None,
    model: torch.nn.Module,
    param_types: dict[str, str] | None,
    blocks: dict[str, dict[str | None, BlockQuant]] | None = None,
    dtype: torch.dtype = torch.bfloat16,
    features: frozenset[str] = frozenset(),
) -> QuantizationPlan:
    """asked: `--quantization`. param_types: {parameter name: GGML type name of the file's
    tensor(s) that filled it} for a GGUF checkpoint, None for other formats. blocks:
    {parameter name: {shard (None for an unmerged layer): its codes}}."""
    if asked is not None:
        return QuantizationPlan(asked, "--quantization")
    if not param_types or not blocks:
        return QuantizationPlan(None, "the checkpoint is not quantized")
    from sglang.layers.linear import Linear

    by_id = {
        id(p): blocks[n] for n, p in model.named_parameters(remove_duplicate=False) if n in blocks
    }
    layer_args = {}
    for layer in model.modules():
        # Codes cover whole tensors: a layer split over tensor-parallel ranks stays dense.
        if isinstance(layer, Linear) and layer.weight is not None and layer.parallel is None:
            shards = _shards_in_order(layer, by_id.get(id(layer.weight)))
            if shards is not None:
                layer_args[id(layer)] = linear_args(shards, dtype, features)
    if not layer_args:
        return QuantizationPlan(None, "the GGUF file has no quantized linear weights")
    counts = Counter(param_types.values())
    kinds = ", ".join(f"{n} {k}" for k, n in counts.most_common())
    ops = Counter(op for op, _ in layer_args.values())
    served = ", ".join(f"{n} on {op}" for op, n in sorted(ops.items()))
    return QuantizationPlan(
        GGUF, f"the GGUF file's codes, not re-quantized: {served} (tensors: {kinds})", layer_args
    )


@contextlib.contextmanager
def repack_threads(active: bool) -> Iterator[None]:
    """One intra-op thread, where `active`, while a GGUF file's codes are read, decoded and
    turned into the kernels' layouts (the load, `plan_quantization`, each layer's prepare): per
    tensor these are a dozen shuffles of a few MiB at most, where a parallel region costs more
    than it saves, and where a machine busy elsewhere stalls every region on its descheduled
    second thread (SmolLM2-135M's 210 tensors on a 2-core VM at load 5: 2.3 s on one thread,
    13 s on two)."""
    threads = torch.get_num_threads()
    if active and threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _shards_in_order(layer: Any, found: dict | None) -> list[BlockQuant] | None:
    """The layer's shards' codes in row order, or None unless every row has some."""
    if not found:
        return None
    names = list(getattr(layer, "shard_offsets", {None: None}))
    if set(found) != set(names):
        return None
    return [found[name] for name in names]


def linear_args(
    shards: list[BlockQuant], dtype: torch.dtype, features: frozenset[str]
) -> tuple[str, dict[str, Any]]:
    """(op, weight arguments) for a layer whose rows are these shards, concatenated."""
    from sglang.layers.linear import can_quantize_int4
    from sglang.ops.quant import int4 as q4

    codes = torch.cat([s.codes for s in shards])
    n, k = codes.shape
    groups = {s.group_size for s in shards}
    if (
        all(s.bits == 4 for s in shards)
        and len(groups) == 1
        and "int4:float_zeros" in features
        and can_quantize_int4(n, k, shards[0].group_size)
        and max(float(s.zeros.abs().max()) for s in shards) <= INT4_MAX_ZERO
    ):
        scales = torch.cat([s.scales for s in shards]).t().to(dtype).contiguous()
        zeros = torch.cat([s.zeros for s in shards]).t().to(dtype).contiguous()
        qweight = q4.pack_qweight(codes.t().to(torch.int32).contiguous(), "awq")
        w4a8 = "int4:w4a8" in features and dtype == torch.bfloat16
        return "gemm.w4a8" if w4a8 else "gemm.int4", {
            "qweight": qweight,
            "scales": scales,
            "qzeros": zeros,
            "packing": "awq",
            "group_size": shards[0].group_size,
        }
    group = math.gcd(*groups)
    scales = torch.cat([s.scales.repeat_interleave(s.group_size // group, 1) for s in shards])
    zeros = None
    if any(s.zeros is not None for s in shards):
        zeros = torch.cat(
            [
                (s.zeros if s.zeros is not None else torch.zeros_like(s.scales)).repeat_interleave(
                    s.group_size // group, 1
                )
                for s in shards
            ]
        )
    return "gemm.w8a16", {
        "qweight": codes,
        "scales": scales.contiguous(),
        "zeros": zeros,
        "group_size": group,
    }
