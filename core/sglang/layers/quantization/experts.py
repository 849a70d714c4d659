"""Quantized MoE experts loaded projection by projection: each expert projection of a quantized
checkpoint is loaded through the format's LinearMethod (the same parameter names, shapes,
checks and post-load processing as a linear layer of that format) on a stand-in Linear. Int4
formats the FusedMoE keeps (FusedMoE.keep_int4: AWQ, GPTQ and pack-quantized, act-order ones
where the backend declares moe:act_order) are handed over as the method's gemm.int4 arguments, which the layer stores as int4
codes, scales and zeros; any other format moe.experts cannot take is dequantized into the
stacked float weights (memory of the float experts; the checkpoint computes what the format
describes). FP8 blocks and MXFP4 skip this where kept (moe_weights.KeptFp8Experts, gpt-oss's
loader): the checkpoint's tensors are already moe.experts' layout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from sglang.layers.linear import Linear
from sglang.layers.quantization.base import QuantizationConfig, QuantizationError
from sglang.layers.quantization.dequant import dequantize

logger = logging.getLogger(__name__)


def int4_expert_group(method) -> int | None:
    """The group size along K (-1: one group a row) of a linear method whose expert projections
    a FusedMoE can keep as int4 codes (FusedMoE.keep_int4): 4-bit GPTQ and compressed-tensors
    pack-quantized (with or without act-order: int4_act_order), AWQ, `--quantization int4`.
    None for any other method (those experts are dequantized)."""
    from sglang.layers.linear import INT4_GROUP_SIZE
    from sglang.layers.quantization.awq import AwqLinearMethod
    from sglang.layers.quantization.compressed_tensors import PackedInt4Method
    from sglang.layers.quantization.gptq import GptqLinearMethod
    from sglang.layers.quantization.int4 import Int4LoadTimeMethod

    if isinstance(method, GptqLinearMethod):
        config = method.config
        return config.group_size if config.bits == 4 else None
    if isinstance(method, AwqLinearMethod):
        return method.group_size
    if isinstance(method, PackedInt4Method):
        return method.group
    if isinstance(method, Int4LoadTimeMethod):
        return INT4_GROUP_SIZE
    return None


def int4_act_order(method) -> bool:
    """Whether an int4 method's groups are act-order (GPTQ desc_act, compressed-tensors
    actorder "group"): its projections' input features come in their own order (g_idx)."""
    from sglang.layers.quantization.compressed_tensors import PackedInt4Method
    from sglang.layers.quantization.gptq import GptqLinearMethod

    if isinstance(method, GptqLinearMethod):
        return bool(method.config.desc_act)
    return isinstance(method, PackedInt4Method) and bool(method.act_order)


class ExpertLoader:
    """Collects one expert projection's checkpoint tensors until its format is complete.

    add(prefix, kind, tensor, shape, store, as_args=False): prefix is the projection's
    checkpoint name ("model.layers.0.mlp.experts.3.gate_proj"), kind the tensor's ("weight",
    "weight_scale_inv", "qweight", ...), shape the float weight's [N, K]; store is called once
    the projection is complete: store(dense) (dense: [N, K] float32), or with as_args
    store(args), the format's gemm.int4 arguments (LinearMethod.process: a FusedMoE keeping
    int4 codes)."""

    def __init__(self, config: QuantizationConfig | None, dtype: torch.dtype) -> None:
        self.config, self.dtype = config, dtype
        self.pending: dict[str, tuple[Linear, Callable[[torch.Tensor], None]]] = {}
        self.labels: set[str] = set()
        # Projections already stored: the shape [N, K] and the optional tensors of their
        # format, which a checkpoint may write after the required ones (compressed-tensors'
        # weight_shape sorts after weight_packed and weight_scale).
        self.done: dict[str, tuple[tuple[int, int], frozenset[str]]] = {}

    def add(
        self, prefix: str, kind: str, tensor: torch.Tensor, shape, store, as_args: bool = False
    ) -> None:
        if prefix in self.done:
            self._late(prefix, kind, tensor)
            return
        if prefix not in self.pending:
            layer = Linear(shape[1], shape[0], ops=None, dtype=self.dtype, device=tensor.device)
            layer.prefix = prefix
            method = self.config.linear_method(prefix, layer) if self.config else None
            if method is not None:
                layer.set_quant_method(method)
            self.pending[prefix] = (layer, store)
        layer, store = self.pending[prefix]
        layer.load(kind, tensor)
        if self._complete(layer):
            method = layer.quant_method
            if as_args:
                if method is None or method.op != "gemm.int4":
                    raise QuantizationError(
                        f"{prefix}: the MoE layer keeps int4 experts, but this projection is "
                        f"{'dense' if method is None else method.label}"
                    )
                store(method.process(layer))
            elif method is None:
                store(layer.weight.detach())
                self.labels.add("dense")
            else:
                store(dequantize(method.op, method.process(layer)))
                self.labels.add(method.label)
            optional = {n for n, s in method.specs.items() if s.optional} if method else set()
            self.done[prefix] = (tuple(shape), frozenset(optional))
            del self.pending[prefix]

    def _late(self, prefix: str, kind: str, tensor: torch.Tensor) -> None:
        """A tensor of a projection already stored: a shape record that agrees is accepted;
        anything else would change what was stored, so it is refused naming it."""
        shape, optional = self.done[prefix]
        if kind == "weight_shape" and kind in optional:
            if [int(v) for v in tensor.reshape(-1).tolist()] != list(shape):
                raise QuantizationError(
                    f"{prefix}.weight_shape is {tensor.tolist()}, the model needs {list(shape)}"
                )
            return
        why = "optional tensors must come before" if kind in optional else "duplicate, after"
        raise QuantizationError(f"{prefix}.{kind}: {why} the projection's other tensors")

    @staticmethod
    def _complete(layer: Linear) -> bool:
        method = layer.quant_method
        if method is None:
            return ("weight", None) in layer.loaded
        return all((n, None) in layer.loaded for n, s in method.specs.items() if not s.optional)

    def finish(self) -> None:
        """Every projection started is complete: else name the first missing tensor."""
        for layer, _ in self.pending.values():
            if layer.quant_method is None:
                raise QuantizationError(f"checkpoint lacks {layer.prefix}.weight")
            layer.quant_method.check_loaded(layer)
        if self.labels - {"dense"}:
            logger.info(
                "MoE experts: %s, dequantized at load (moe.experts takes this format as "
                "float weights)",
                ", ".join(sorted(self.labels)),
            )
