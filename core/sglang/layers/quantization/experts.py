"""Quantized MoE experts that moe.experts cannot take as they are: each expert projection of a
quantized checkpoint is loaded through the format's LinearMethod (the same parameter names,
shapes, checks and post-load processing as a linear layer of that format) on a stand-in Linear,
then dequantized into the FusedMoE's stacked float weights. Memory is that of the float
experts; the checkpoint loads and computes what the format describes. FP8 block-scaled experts
skip this where the backend declares moe:fp8_block (FusedMoE.keep_fp8_blocks): moe.experts
then takes their codes and block scales.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from sglang.layers.linear import Linear
from sglang.layers.quantization.base import QuantizationConfig, QuantizationError
from sglang.layers.quantization.dequant import dequantize

logger = logging.getLogger(__name__)


class ExpertLoader:
    """Collects one expert projection's checkpoint tensors until its format is complete.

    add(prefix, kind, tensor, shape, store): prefix is the projection's checkpoint name
    ("model.layers.0.mlp.experts.3.gate_proj"), kind the tensor's ("weight", "weight_scale_inv",
    "qweight", ...), shape the float weight's [N, K]; store(dense) is called once the
    projection is complete (dense: [N, K] float32)."""

    def __init__(self, config: QuantizationConfig | None, dtype: torch.dtype) -> None:
        self.config, self.dtype = config, dtype
        self.pending: dict[str, tuple[Linear, Callable[[torch.Tensor], None]]] = {}
        self.labels: set[str] = set()

    def add(self, prefix: str, kind: str, tensor: torch.Tensor, shape, store) -> None:
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
            if method is None:
                dense = layer.weight.detach()
                self.labels.add("dense")
            else:
                dense = dequantize(method.op, method.process(layer))
                self.labels.add(method.label)
            store(dense)
            del self.pending[prefix]

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
