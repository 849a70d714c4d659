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

    def __init__(self, platform: Any, overrides: dict[str, str] | None = None) -> None:
        """`overrides` maps an op to the backend whose kernel must serve it (e.g. from
        --attention-backend); that backend must run on the same torch device type."""
        self.platform = platform
        self.choices: dict[str, str] = {}
        for attr, op in OPS.items():
            if overrides and op in overrides:
                fn, name = self._forced(op, overrides[op])
            else:
                res = platform.resolve(op)
                fn, name = res.chosen.fn, res.chosen.name
            setattr(self, attr, fn)
            self.choices[op] = name
        logger.info(
            "kernels on %s: %s",
            platform.name,
            ", ".join(f"{op}={name}" for op, name in sorted(self.choices.items())),
        )

    def _forced(self, op: str, backend: str) -> tuple[Callable[..., Any], str]:
        found = self.platform.found
        other = found.backends.get(backend)
        if other is None or not other.available:
            raise ValueError(f"{op}: backend {backend!r} is not available here")
        if other.info.device_type != self.platform.backend.info.device_type:
            raise ValueError(
                f"{op}: backend {backend!r} runs on {other.info.device_type}, the selected "
                f"{self.platform.name!r} on {self.platform.backend.info.device_type}"
            )
        kernel, rejected = found.registry.backend_kernel(op, backend, other.capabilities)
        if kernel is None:
            why = "; ".join(f"{r.kernel}: {r.reason}" for r in rejected) or "no kernel registered"
            raise ValueError(f"{op}: backend {backend!r} cannot serve it ({why})")
        return kernel.fn, kernel.name

    def kernel(self, op: str, config: dict | None = None) -> Callable[..., Any]:
        return self.platform.kernel(op, config)
