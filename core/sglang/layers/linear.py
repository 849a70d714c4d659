"""Linear layers over the GEMM ops, with the merged projections models use.

Weights are stored [out_features, in_features] (Hugging Face's layout). Merged layers (qkv,
gate_up) hold one weight whose rows are the concatenation of their shards; `load_shard` copies
a checkpoint tensor into its rows.

Once the weights are loaded the model runner calls `prepare_linear_layers`: each layer hands
its weight to its GEMM kernel's `prepare` (sglang.ops.registry: a one-time repack into the
kernel's layout) and keeps only what comes back, freeing the float weight when the kernel made
its own copy. With quantization="int4" the weight is first turned into its weight-only int4
form, the gpt-fast way (a checkpoint transform, then the layer runs another op): group-wise
asymmetric int4, groups of 32 along the input features, in the AWQ packing with float zero
points where the backend takes them, multiplied by `gemm.int4` (see `int4_weight_args`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch
from torch import nn

from sglang.layers.base import Layer
from sglang.layers.ops_table import OpTable
from sglang.ops.quant import int4 as q4

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int4",)
INT4_GROUP_SIZE = 32


def int4_weight_args(
    weight: torch.Tensor, group_size: int = INT4_GROUP_SIZE, float_zeros: bool = True
) -> dict[str, Any]:
    """A float weight [N, K] -> gemm.int4's weight arguments: min-max asymmetric quantization
    per group of `group_size` input features (q4.quantize_int4), AWQ packing, scales (and
    float zero points) in the weight's dtype.

    Float zero points ("int4:float_zeros") are what a checkpoint that was itself 4-bit with a
    scale and a minimum per 32 weights needs (GGUF Q4_1: w = d * q + m): its dequantized weights
    lie on 16 levels per group, the extremes used, so re-quantizing recovers the file's own
    codes, scale d and zero -m / d, up to their rounding to the weight's dtype (SmolLM2-135M
    Q4_1: relative squared error 3e-15 in float32, 3e-5 in bfloat16). Integer zeros (AWQ /
    GPTQ, for backends without float zeros) cannot follow m: every group's levels move by up
    to half a step, which costs as much as quantizing afresh (7e-3 there)."""
    quant = q4.quantize_int4(
        weight.detach(), group_size, scale_dtype=weight.dtype, float_zeros=float_zeros
    )
    if float_zeros:
        qweight, qzeros = q4.pack_qweight(quant.q, "awq"), quant.zeros
    else:
        qweight, qzeros = q4.pack_awq(quant.q, quant.zeros)
    return {
        "qweight": qweight,
        "scales": quant.scales,
        "qzeros": qzeros,
        "packing": "awq",
        "group_size": group_size,
    }


def can_quantize_int4(out_features: int, in_features: int, group_size: int) -> bool:
    """AWQ packs 8 output features per int32; groups must tile the input features."""
    return out_features % q4.PACK == 0 and in_features % group_size == 0


class Linear(Layer):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        ops: OpTable,
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.ops = ops
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(
            torch.empty(out_features, in_features, dtype=dtype, device=device), requires_grad=False
        )
        self.bias = (
            nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device), requires_grad=False)
            if bias
            else None
        )
        # Set by `prepare`: the kernel and its weight arguments (in the kernel's layout), and
        # the kernel with them (and the bias) bound, which is what forward calls.
        self.gemm_op: str = "gemm.dense"
        self._fn = None
        self._weights: dict[str, Any] = {}
        self._call = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._call is None:
            return self.ops.gemm_dense(x=x, weight=self.weight, bias=self.bias)
        return self._call(x=x)

    def prepare(self, quantization: str | None = None) -> None:
        """Once, after loading: quantize (if asked and the shape allows) and hand the weight to
        the kernel's prepare. The float weight is dropped when the kernel no longer uses it (a
        tied weight lives on in its other owner)."""
        if self._fn is not None:
            return
        weight = self.weight.detach()
        if quantization not in (None, *QUANTIZATIONS):
            raise ValueError(f"unknown quantization {quantization!r}; known: {QUANTIZATIONS}")
        if quantization == "int4" and can_quantize_int4(
            self.out_features, self.in_features, INT4_GROUP_SIZE
        ):
            float_zeros = "int4:float_zeros" in self.ops.features
            self.gemm_op, args = "gemm.int4", int4_weight_args(weight, float_zeros=float_zeros)
        else:
            self.gemm_op, args = "gemm.dense", {"weight": weight}
        self.set_prepared(*self.ops.prepared(self.gemm_op, args))
        if not any(v is weight for v in self._weights.values()):
            self.weight = None

    def set_prepared(self, fn, weights: dict[str, Any]) -> None:
        """Run `fn` with these prepared weight arguments from now on. They are bound once, with
        the bias (loaded before prepare; a later load copies into it in place, as loaders
        do), so a call passes only x."""
        self._fn, self._weights = fn, weights
        self._call = functools.partial(fn, bias=self.bias, **weights)

    def prepared_tensors(self) -> list[torch.Tensor]:
        """The tensors the prepared weights hold (for memory accounting)."""
        return list(_tensors(self._weights))


def _tensors(value: Any):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)


def prepare_linear_layers(
    model: nn.Module, quantization: str | None = None, keep_dense: frozenset[int] = frozenset()
) -> None:
    """Prepare every Linear of `model` (the LM head included) once its weights are loaded.
    keep_dense: id() of weight parameters whose layers are not quantized."""
    layers = [m for m in model.modules() if isinstance(m, Linear)]
    for layer in layers:
        layer.prepare(None if id(layer.weight) in keep_dense else quantization)
    if quantization:
        done = sum(layer.gemm_op != "gemm.dense" for layer in layers)
        logger.info("%s: %d of %d linear layers quantized", quantization, done, len(layers))


def weight_bytes(model: nn.Module) -> int:
    """Bytes held by the model's parameters and its linear layers' prepared weights, each
    storage counted once (a prepared weight is often the parameter itself, detached: another
    tensor object over the same memory)."""
    tensors = list(model.parameters())
    for m in model.modules():
        if isinstance(m, Linear):
            tensors += m.prepared_tensors()
    held: dict[int, int] = {}
    for t in tensors:
        try:
            storage = t.untyped_storage()
            held[storage.data_ptr()] = storage.nbytes()
        except (NotImplementedError, RuntimeError):  # opaque tensors (prepacked): no storage
            held[id(t)] = t.numel() * t.element_size()
    return sum(held.values())


class MergedLinear(Linear):
    """Several projections of the same input in one GEMM; shards named in `shard_sizes`."""

    def __init__(self, in_features: int, shard_sizes: dict[str, int], ops: OpTable, **kw) -> None:
        super().__init__(in_features, sum(shard_sizes.values()), ops, **kw)
        self.shard_offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for name, size in shard_sizes.items():
            self.shard_offsets[name] = (start, size)
            start += size

    def load_shard(self, shard: str, tensor: torch.Tensor, is_bias: bool = False) -> None:
        start, size = self.shard_offsets[shard]
        target = self.bias if is_bias else self.weight
        if tensor.shape[0] != size:
            raise ValueError(
                f"shard {shard}: checkpoint has {tensor.shape[0]} rows, expected {size}"
            )
        target.data[start : start + size].copy_(tensor)

    def split(self, out: torch.Tensor) -> list[torch.Tensor]:
        return list(out.split([size for _, size in self.shard_offsets.values()], dim=-1))
