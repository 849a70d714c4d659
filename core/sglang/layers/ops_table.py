"""The kernels a model calls, resolved once per model from the selected platform.

Layers receive this table at construction instead of reaching for a global, so two engines on
two backends can live in one process, and the choice is logged once, not per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sglang.backend.registry import REFERENCE, Kernel, prepared_arguments
from sglang.parallel.state import SINGLE

logger = logging.getLogger(__name__)

OPS = {
    "rms_norm": "norm.rms",
    "silu_mul": "act.silu_mul",
    "gelu_mul": "act.gelu_mul",
    "rope": "rope",
    "rope_qk_norm": "rope.qk_norm",
    "rope_kv_store": "rope.kv_store",
    "kv_store": "kv.store",
    "attention_extend": "attention.extend",
    "attention_decode": "attention.decode",
    "mla_extend": "attention.mla_extend",
    "mla_decode": "attention.mla_decode",
    "gemm_dense": "gemm.dense",
    "gemm_dense_rms": "gemm.dense_rms",
    "gemm_int4": "gemm.int4",
    "gemm_int4_rms": "gemm.int4_rms",
    "gemm_int8": "gemm.int8",
    "gemm_fp8": "gemm.fp8",
    "gemm_fp4": "gemm.fp4",
    "gemm_w8a16": "gemm.w8a16",
    "gemm_w4a8": "gemm.w4a8",
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
        # Which ranks hold what (sglang.parallel): set by the model runner before the model is
        # built; layers split their weights by it.
        self.parallel = SINGLE
        caps = getattr(platform, "capabilities", None)
        # The backend's capability keys ("int4:float_zeros", ...), for layers choosing a format.
        self.features: frozenset[str] = frozenset(caps.features()) if caps else frozenset()
        self.choices: dict[str, str] = {}
        self.kernels: dict[str, Kernel] = {}
        for attr, op in OPS.items():
            if overrides and op in overrides:
                kernel = self._forced(op, overrides[op])
            else:
                kernel = platform.resolve(op).chosen
            setattr(self, attr, kernel.fn)
            self.choices[op] = kernel.name
            self.kernels[op] = kernel
        logger.info(
            "kernels on %s: %s",
            platform.name,
            ", ".join(f"{op}={name}" for op, name in sorted(self.choices.items())),
        )

    def _forced(self, op: str, backend: str) -> Kernel:
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
        return kernel

    def kernel(self, op: str, config: dict | None = None) -> Callable[..., Any]:
        return self.platform.kernel(op, config)

    def kernel_needing(
        self, op: str, features: tuple[str, ...], config: dict | None = None
    ) -> Callable[..., Any]:
        """The kernel for a configuration that needs these capability keys (attention sinks,
        gpt-oss's expert activation): that of the backend serving `op` (the selected one, or
        the one an override names) where it declares them all, else the reference kernel,
        logged (correct, slower) rather than a kernel that cannot."""
        return self._kernel_needing(op, features, config).fn

    def prepared_needing(
        self, op: str, features: tuple[str, ...], args: dict[str, Any]
    ) -> tuple[Callable[..., Any], dict[str, Any]]:
        """`prepared` for the kernel `kernel_needing` picks (no features: the table's)."""
        kernel = self._kernel_needing(op, features) if features else self.kernels[op]
        return kernel.fn, prepared_arguments(kernel, args)

    def _kernel_needing(self, op: str, features: tuple[str, ...], config: dict | None = None):
        found = self.platform.found
        backend = self.kernels[op].backend
        caps = found.backends[backend].capabilities
        missing = [f for f in features if f not in caps.features()]
        kernel = None
        if not missing:
            kernel, _ = found.registry.backend_kernel(op, backend, caps, config)
        if kernel is None:
            kernel, _ = found.registry.backend_kernel(op, REFERENCE, None, config)
            if backend != REFERENCE:
                logger.warning(
                    "%s: backend %s lacks %s: the reference kernel serves this layer",
                    op,
                    backend,
                    ", ".join(missing) or "a kernel for it",
                )
        return kernel

    def declares(self, op: str, features: tuple[str, ...]) -> bool:
        """Whether the backend serving `op` declares every one of these capability keys, so
        that `kernel_needing` would give a kernel of its own, not the reference fallback."""
        backend = self.kernels[op].backend
        caps = self.platform.found.backends[backend].capabilities
        return all(f in caps.features() for f in features)

    def native(self, op: str) -> bool:
        """Whether `op` runs a kernel of a backend rather than the reference fallback: a layer
        takes a fused op (rope.qk_norm) only then, else its parts, each on the backend."""
        kernel = self.kernels.get(op) or self.platform.resolve(op).chosen
        return kernel.backend != REFERENCE

    def kernel_name(self, op: str) -> str:
        kernel = self.kernels.get(op) or self.platform.resolve(op).chosen
        return kernel.name

    def prepared(self, op: str, args: dict[str, Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
        """(kernel function, `args` with the weights in its layout): a layer calls this once at
        load time, then calls the function with its activations and these arguments."""
        kernel = self.kernels.get(op) or self.platform.resolve(op).chosen
        return kernel.fn, prepared_arguments(kernel, args)
