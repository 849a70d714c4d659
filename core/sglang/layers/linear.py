"""Linear layers over the GEMM ops, with the merged projections models use.

Weights are stored [out_features, in_features] (Hugging Face's layout). Merged layers (qkv,
gate_up) hold one weight whose rows are the concatenation of their shards; `load_shard` copies
a checkpoint tensor into its rows.

Once the weights are loaded the model runner calls `prepare_linear_layers`: each layer hands
its weight to its GEMM kernel's `prepare` (sglang.backend.registry: a one-time repack into the
kernel's layout) and keeps only what comes back, freeing the float weight when the kernel made
its own copy. With quantization="int4" the weight is first turned into its weight-only int4
form, the gpt-fast way (a checkpoint transform, then the layer runs another op): group-wise
asymmetric int4, groups of 32 along the input features, in the AWQ packing with float zero
points where the backend takes them, multiplied by `gemm.int4` (see `int4_weight_args`).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from sglang.backend.registry import REFERENCE
from sglang.layers.base import Layer
from sglang.layers.norm import PendingNorm
from sglang.layers.ops_table import OpTable
from sglang.layers.weight_memory import tensors_in
from sglang.model_loader.gguf_blocks import CodesTensor
from sglang.ops.quant import int4 as q4
from sglang.parallel.sharding import check_tiles, local_size, split_part
from sglang.parallel.state import GroupInfo

if TYPE_CHECKING:
    from sglang.layers.quantization.base import LinearMethod

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int4",)
INT4_GROUP_SIZE = 32
NORM_FUSED_OPS = {"gemm.dense": "gemm.dense_rms", "gemm.int4": "gemm.int4_rms"}
"""A GEMM op -> its form with a decoder layer's RMS norm inside (PendingNorm), which takes the
weights as the same backend's plain op prepared them."""


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


def tp_group(ops: Any) -> GroupInfo:
    """The tensor-parallel group the layers built on `ops` split over."""
    parallel = getattr(ops, "parallel", None)
    return parallel.tp if parallel is not None else GroupInfo()


# How the float weight and the bias split (quantized parameters bring their own ParamSpec).
_FLOAT_DIMS = {"weight": (0, 1), "bias": (0, None)}


class Linear(Layer):
    """parallel: None (every rank holds the whole layer), "column" (the output features split
    over the tensor-parallel ranks: each returns its slice) or "row" (the input features split:
    each rank takes its slice of x, and the partial products are all-reduced; the bias is
    added once, by rank 0). in_features / out_features are this rank's."""

    quantizable = True  # False: stays in the float dtype whatever the checkpoint's format

    def __init__(
        self,
        in_features: int,
        out_features: int,
        ops: OpTable,
        bias: bool = False,
        dtype: torch.dtype = torch.float32,
        device: torch.device | None = None,
        parallel: str | None = None,
        local_out_features: int | None = None,
    ) -> None:
        super().__init__()
        self.ops = ops
        self.tp = tp_group(ops) if parallel else GroupInfo()
        self.parallel = parallel if self.tp.size > 1 else None
        if self.parallel == "column":
            out_features = local_out_features or local_size(
                out_features, self.tp.size, f"{type(self).__name__} output features"
            )
        elif self.parallel == "row":
            in_features = local_size(
                in_features, self.tp.size, f"{type(self).__name__} input features"
            )
        elif parallel not in (None, "column", "row"):
            raise ValueError(f"parallel must be None, 'column' or 'row', not {parallel!r}")
        self.in_features, self.out_features = in_features, out_features
        self.device, self.dtype = device, dtype
        # Quantized checkpoints (sglang.layers.quantization): the method that owns this layer's
        # parameters, the layer's name in the model, and the (parameter, shard) pairs loaded.
        self.quant_method: LinearMethod | None = None
        self.prefix = ""
        self.loaded: set[tuple[str, str | None]] = set()
        # GGUF: first row -> a CodesTensor loaded into the weight, kept as codes until
        # `prepare` knows whether the layer runs on them (then its float values are not needed)
        self._deferred: dict[int, CodesTensor] = {}
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
        # gemm.dense_rms with the weight and bias bound, where this layer runs the norm before
        # it inside its GEMM (set by `prepare`; see fuses_norm)
        self._rms_call = None

    def forward(self, x: torch.Tensor | PendingNorm) -> torch.Tensor:
        if isinstance(x, PendingNorm):  # the norm inside this GEMM where the backend fuses them
            if self._rms_call is not None:
                return x.project(self._rms_call)
            x = x.normed()
        if self._call is None:
            out = self.ops.gemm_dense(x=x, weight=self.weight, bias=self._own_bias())
            return self.tp.comm.all_reduce(out) if self.parallel == "row" else out
        return self._call(x=x)

    def _own_bias(self):
        """The bias this rank adds: a row-parallel layer's partial sums get it once."""
        return None if self.parallel == "row" and self.tp.rank > 0 else self.bias

    # --- tensor parallelism (sglang.parallel.sharding) -------------------------------------
    def shard_part(self, shard: str | None) -> tuple[int, int]:
        """(part, parts): which slice of a checkpoint tensor's output features this rank
        holds (QKV layers replicate KV heads when there are fewer than ranks)."""
        return self.tp.rank, self.tp.size

    def local_part(self, name: str, tensor: torch.Tensor, shard: str | None) -> torch.Tensor:
        """This rank's slice of the whole checkpoint tensor `name` (of `shard`)."""
        spec = self.quant_method.specs.get(name) if self.quant_method is not None else None
        if spec is not None:
            dims = (spec.output_dim, spec.input_dim)
            divs = (spec.output_div, spec.input_div)
        elif name in _FLOAT_DIMS and (name != "weight" or self.weight is not None):
            dims, divs = _FLOAT_DIMS[name], (1, 1)
        else:
            return tensor  # not a parameter of this layer: load() names the problem
        what = self.checkpoint_name(name, shard)
        if self.parallel == "column" and dims[0] is not None:
            local = self.shard_offsets[shard][1] if shard is not None else self.out_features
            check_tiles(local, divs[0], what)
            part, parts = self.shard_part(shard)
            return split_part(tensor, dims[0], part, parts, what)
        if self.parallel == "row" and dims[1] is not None:
            check_tiles(self.in_features, divs[1], what)
            return split_part(tensor, dims[1], self.tp.rank, self.tp.size, what)
        return tensor

    @property
    def input_offset(self) -> int:
        """The first input feature this rank holds (row-parallel), in the whole layer."""
        return self.tp.rank * self.in_features if self.parallel == "row" else 0

    # --- quantized formats (sglang.layers.quantization) -------------------------------------
    def set_quant_method(self, method: LinearMethod) -> None:
        """Before loading: the method replaces the float weight by its format's parameters."""
        self.quant_method = method
        method.create_weights(self)

    def shard_names(self) -> tuple[str, ...]:
        return ()

    def shard_index(self, shard: str) -> int:
        return self.shard_names().index(shard)

    def checkpoint_name(self, name: str, shard: str | None = None) -> str:
        """The checkpoint's name of parameter `name` (of `shard`, for a merged layer)."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def load(self, name: str, tensor: torch.Tensor, shard: str | None = None) -> None:
        """Copy the checkpoint tensor `name` ("weight", "bias", "weight_scale", ...) in (this
        rank's part of it, when the layer is split)."""
        if self.parallel is not None:
            tensor = self.local_part(name, tensor, shard)
        if name == "bias" and self.bias is not None:
            self._copy_rows(self.bias, tensor, shard, name)
        elif self.quant_method is not None:
            self.quant_method.load(self, name, tensor, shard)
        elif name == "weight":
            self._copy_rows(self.weight, tensor, shard, name)
        else:
            from sglang.layers.quantization.base import QuantizationError

            raise QuantizationError(
                f"{self.checkpoint_name(name, shard)}: a quantization tensor, but the model is "
                "served unquantized (its config.json has no quantization_config)"
            )
        self.loaded.add((name, shard))
        self.last_shard = shard  # which rows the last load filled (GGUF codes follow them)

    def _copy_rows(self, param, tensor: torch.Tensor, shard: str | None, name: str) -> None:
        target = param.data
        start, size = self.shard_offsets[shard] if shard is not None else (0, len(target))
        target = target[start : start + size]
        if tuple(tensor.shape) != tuple(target.shape):
            raise ValueError(
                f"{self.checkpoint_name(name, shard)}: checkpoint shape {tuple(tensor.shape)} "
                f"!= {tuple(target.shape)}"
            )
        if isinstance(tensor, CodesTensor) and param is self.weight:
            self._deferred[start] = tensor  # values only if the layer stays dense (prepare)
            return
        self._deferred.pop(start, None)
        target.copy_(tensor)

    def _fill_deferred(self) -> None:
        """Compute the float rows that GGUF codes stand for (a layer served dense)."""
        for start, tensor in self._deferred.items():
            self.weight.data[start : start + len(tensor)].copy_(tensor)
        self._deferred.clear()

    def _prepare_quantized(self) -> None:
        method = self.quant_method
        method.check_loaded(self)
        args = method.process(self)
        for name in method.specs:  # the op's arguments hold what is still needed
            setattr(self, name, None)
        self.gemm_op = method.op
        self.set_prepared(*self.ops.prepared(method.op, args))
        self._bind_norm_fusion()

    def prepare(
        self, quantization: str | None = None, quantized: tuple[str, dict] | None = None
    ) -> None:
        """Once, after loading: quantize (if asked and the shape allows) and hand the weight to
        the kernel's prepare. quantized: (op, weight arguments) of a checkpoint's own quantized
        form (a GGUF file's codes), served instead of the float weight. The float weight is
        dropped when the kernel no longer uses it (a tied weight lives on in its other
        owner)."""
        if self._fn is not None:
            return
        if self.quant_method is not None:
            self._prepare_quantized()
            return
        if quantized is None:
            self._fill_deferred()
        self._deferred.clear()
        weight = self.weight.detach()
        if quantization not in (None, *QUANTIZATIONS):
            raise ValueError(f"unknown quantization {quantization!r}; known: {QUANTIZATIONS}")
        if quantized is not None:
            self.gemm_op, args = quantized
        elif quantization == "int4" and can_quantize_int4(
            self.out_features, self.in_features, INT4_GROUP_SIZE
        ):
            float_zeros = "int4:float_zeros" in self.ops.features
            self.gemm_op, args = "gemm.int4", int4_weight_args(weight, float_zeros=float_zeros)
        else:
            self.gemm_op, args = "gemm.dense", {"weight": weight}
        self.set_prepared(*self.ops.prepared(self.gemm_op, args))
        self._bind_norm_fusion()
        if not any(v is weight for v in self._weights.values()):
            self.weight = None

    fuse_norm = True
    """Where the backend has a kernel of its own for the layer's GEMM with the norm inside
    (NORM_FUSED_OPS), a layer handed a PendingNorm runs the norm inside its GEMM (False: the
    norm's own launch, then the GEMM)."""

    def _bind_norm_fusion(self) -> None:
        """After prepare: the fused op with this layer's prepared weights and bias bound, where
        fuses_norm says so."""
        fused = NORM_FUSED_OPS.get(self.gemm_op)
        if fused is not None and self.fuses_norm():
            # the fused op takes the weights as the same backend's plain op prepared them
            fn = getattr(self.ops, fused.replace(".", "_"))
            self._rms_call = functools.partial(fn, bias=self._own_bias(), **self._weights)

    def fuses_norm(self) -> bool:
        """Whether this layer takes a PendingNorm into its GEMM: the switch on, not row-parallel
        (its x is a slice), and its op's fused form (NORM_FUSED_OPS) served by a kernel of the
        backend that serves the op itself (not the reference fallback), which takes that
        kernel's weight layout (it has no prepare of its own)."""
        kernels = getattr(self.ops, "kernels", None) or {}
        fused = NORM_FUSED_OPS.get(self.gemm_op)
        plain, rms = kernels.get(self.gemm_op), kernels.get(fused)
        return (
            self.fuse_norm
            and self.parallel != "row"
            and plain is not None
            and rms is not None
            and rms.backend == plain.backend
            and rms.backend != REFERENCE
            and rms.prepare is None
        )

    @property
    def takes_pending_norm(self) -> bool:
        """Whether handing this layer a PendingNorm saves the norm's launch (after prepare)."""
        return self._rms_call is not None

    def set_prepared(self, fn, weights: dict[str, Any]) -> None:
        """Run `fn` with these prepared weight arguments from now on. They are bound once, with
        the bias (loaded before prepare; a later load copies into it in place, as loaders
        do), so a call passes only x."""
        self._fn, self._weights = fn, weights
        namer = getattr(self.ops, "kernel_name", None)
        self.kernel_name = namer(self.gemm_op) if namer else getattr(fn, "__name__", "?")
        call = functools.partial(fn, bias=self._own_bias(), **weights)
        if self.parallel == "row":
            reduce = self.tp.comm.all_reduce
            self._call = lambda x: reduce(call(x=x))
        else:
            self._call = call

    def checkpoint_prefixes(self) -> list[str]:
        return [self.prefix]

    def prepared_tensors(self) -> list[torch.Tensor]:
        """The tensors the prepared weights hold (for memory accounting)."""
        return list(tensors_in(self._weights))


def prepare_linear_layers(
    model: nn.Module,
    quantization: str | None = None,
    quantized: dict[int, tuple[str, dict]] | None = None,
) -> None:
    """Prepare every Linear of `model` (the LM head included) once its weights are loaded,
    then every other module with a `prepare_weights` (the MoE experts).
    quantized: id() of a Linear -> (op, weight arguments) of the checkpoint's own quantized
    form (see Linear.prepare)."""
    layers = [m for m in model.modules() if isinstance(m, Linear)]
    quantized = quantized or {}
    for layer in layers:
        layer.prepare(quantization, quantized.get(id(layer)))
    # Other layers whose kernels may prepare their weights (FusedMoE.prepare_weights).
    for module in model.modules():
        if not isinstance(module, Linear) and hasattr(module, "prepare_weights"):
            module.prepare_weights()
    if quantization or quantized:
        done = sum(layer.gemm_op != "gemm.dense" for layer in layers)
        how = quantization or "the checkpoint's codes"
        logger.info("%s: %d of %d linear layers quantized", how, done, len(layers))


def __getattr__(name: str):
    """MergedLinear / QKVLinear moved to sglang.layers.merged_linear; imported lazily (that
    module imports this one)."""
    if name in ("MergedLinear", "QKVLinear"):
        from sglang.layers import merged_linear

        return getattr(merged_linear, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
