"""The kernels a model calls, resolved once per model from the selected platform.

Layers receive this table at construction instead of reaching for a global, so two engines on
two backends can live in one process, and the choice is logged once, not per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

OPS = {
    "rms_norm": "norm.rms",
    "silu_mul": "act.silu_mul",
    "gelu_mul": "act.gelu_mul",
    "rope": "rope",
    "kv_store": "kv.store",
    "attention_extend": "attention.extend",
    "attention_decode": "attention.decode",
    "gemm_dense": "gemm.dense",
    "sample": "sampling.sample",
    "apply_bitmask": "grammar.apply_bitmask",
    "moe_route": "moe.route",
    "moe_experts": "moe.experts",
}


class OpTable:
    """Attribute access to resolved kernels: `ops.rms_norm(x=..., weight=..., eps=...)`."""

    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self.choices: dict[str, str] = {}
        for attr, op in OPS.items():
            res = platform.resolve(op)
            setattr(self, attr, res.chosen.fn)
            self.choices[op] = res.chosen.name
        logger.info(
            "kernels on %s: %s",
            platform.name,
            ", ".join(f"{op}={name}" for op, name in sorted(self.choices.items())),
        )

    def kernel(self, op: str, config: dict | None = None) -> Callable[..., Any]:
        return self.platform.kernel(op, config)
