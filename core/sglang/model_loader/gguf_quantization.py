"""Which linear layers of a GGUF model are served 4-bit when `--quantization` is unset.

A GGUF file publishes each tensor in its own type: in a "Q4_1" file most linear weights are
Q4_1 while the embedding (tied to the LM head) is Q8_0 and the norms F32. The loader
dequantizes every tensor; the layers whose file type is 4-bit then go back to 4 bits through
`gemm.int4` (group 32, float zero points: a Q4_0/Q4_1/Q4_K group is 16 levels d * q + m, so
the re-quantization recovers the file's own codes up to the rounding of d and m to the serving
dtype; see `sglang.layers.linear.int4_weight_args`). Layers published at more bits (Q5/Q6/Q8,
F16) keep the serving dtype: never fewer bits than the file has. `--quantization int4` instead
quantizes every linear layer, the file's type notwithstanding.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

FOUR_BIT_TYPES = frozenset({"Q4_0", "Q4_1", "Q4_K", "IQ4_NL", "IQ4_XS"})


@dataclass(frozen=True)
class QuantizationPlan:
    method: str | None  # the linear layers' quantization ("int4"), None for none
    keep_dense: frozenset[int]  # id() of weight parameters that stay in the float dtype
    reason: str  # for the startup log


def plan_quantization(
    asked: str | None, model: torch.nn.Module, param_types: dict[str, str] | None
) -> QuantizationPlan:
    """asked: `--quantization`. param_types: {parameter name: GGML type name of the file's
    tensor(s) that filled it} for a GGUF checkpoint, None for other formats."""
    if asked is not None:
        return QuantizationPlan(asked, frozenset(), "--quantization")
    if not param_types:
        return QuantizationPlan(None, frozenset(), "the checkpoint is not quantized")
    params = dict(model.named_parameters(remove_duplicate=False))
    weights: dict[int, set[str]] = {}
    for name, kind in param_types.items():
        if name in params:
            weights.setdefault(id(params[name]), set()).add(kind)
    dense = frozenset(i for i, kinds in weights.items() if not kinds <= FOUR_BIT_TYPES)
    four_bit = {i for i, kinds in weights.items() if kinds <= FOUR_BIT_TYPES}
    if not four_bit:
        return QuantizationPlan(None, frozenset(), "the GGUF file has no 4-bit tensors")
    counts = Counter(param_types.values())
    kinds = ", ".join(f"{n} {k}" for k, n in counts.most_common())
    return QuantizationPlan(
        "int4", dense, f"the GGUF file's 4-bit weights stay 4-bit (tensors: {kinds})"
    )
