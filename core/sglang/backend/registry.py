"""The kernel registry: which implementations exist for each op, and which one is chosen.

Backends register kernels through a `KernelRegistrar` bound to their name. For a selected
backend, `resolve` walks that backend's kernels by priority, then the reference kernel (always
last, always able), and returns the chosen kernel with every rejected candidate and the reason
it was rejected: the selection is explainable, as `sglang backends` shows.

A kernel may come with `prepare`, a one-time transform of the op's weight arguments into the
layout it prefers (a prepacked GEMM weight, a repacked int4 weight). Layers call it once at
load time through `prepared_arguments`, never per call, and the conformance runner calls it
before the kernel, so a prepared kernel is checked as it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from sglang.backend.types import Capabilities
from sglang.ops import specs

REFERENCE = "reference"


@dataclass(frozen=True)
class Kernel:
    op: str
    backend: str
    name: str
    fn: Callable[..., Any]
    priority: int = 0
    # Capability keys the kernel needs from the selected backend's capabilities.
    requires: tuple[str, ...] = ()
    # available() -> None, or why this kernel cannot run here (a library missing, ...).
    available: Callable[[], str | None] | None = None
    # unsupported(config) -> None, or why this kernel cannot serve a configuration (a dict such
    # as {"dtype": torch.bfloat16, "sliding_window": 4096}). Conformance passes case params.
    unsupported: Callable[[Mapping[str, Any]], str | None] | None = None
    # prepare(args) -> weight arguments in the kernel's own layout (see `prepared_arguments`).
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def reject_reason(
        self, capabilities: Capabilities | None, config: Mapping[str, Any] | None
    ) -> str | None:
        if self.available is not None:
            why = self.available()
            if why:
                return f"unavailable: {why}"
        if capabilities is not None and self.requires:
            missing = capabilities.missing(self.requires)
            if missing:
                return "missing capabilities: " + ", ".join(missing)
        if self.unsupported is not None and config is not None:
            why = self.unsupported(config)
            if why:
                return f"unsupported configuration: {why}"
        return None


def prepared_arguments(kernel: Kernel, args: Mapping[str, Any]) -> dict[str, Any]:
    """`args` (an op's keyword arguments, or the part of them fixed at load time) with the
    weight arguments (the spec's `weight_args`) replaced by what `kernel.prepare` makes of them.

    prepare receives the weight arguments present in `args` together with its non-tensor
    arguments (formats, group sizes: fixed for a layer), once, at load time, and returns the
    weight arguments to call the kernel with instead (any names; a weight argument it leaves
    out is not passed). Without prepare, `args` come back as they are."""
    if kernel.prepare is None:
        return dict(args)
    weight_names = specs.get_spec(kernel.op).weight_args
    weights = {k: v for k, v in args.items() if k in weight_names}
    rest = {k: v for k, v in args.items() if k not in weight_names}
    config = {k: v for k, v in rest.items() if not isinstance(v, torch.Tensor)}
    return {**rest, **kernel.prepare({**weights, **config})}


@dataclass(frozen=True)
class Rejection:
    kernel: str
    backend: str
    reason: str


@dataclass(frozen=True)
class Resolution:
    op: str
    chosen: Kernel
    rejected: tuple[Rejection, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "chosen": {"kernel": self.chosen.name, "backend": self.chosen.backend},
            "rejected": [r.__dict__ for r in self.rejected],
        }


@dataclass
class KernelRegistry:
    _kernels: dict[str, list[Kernel]] = field(default_factory=dict)

    def registrar(self, backend: str) -> KernelRegistrar:
        return KernelRegistrar(self, backend)

    def add(self, kernel: Kernel) -> None:
        specs.get_spec(kernel.op)  # raises KeyError naming the unknown op
        existing = self._kernels.setdefault(kernel.op, [])
        if any(k.name == kernel.name for k in existing):
            raise ValueError(f"kernel {kernel.name!r} for {kernel.op} is registered twice")
        existing.append(kernel)

    def remove_backend(self, backend: str) -> None:
        """Drop everything a backend registered (used when its registration hook fails)."""
        for op, kernels in self._kernels.items():
            self._kernels[op] = [k for k in kernels if k.backend != backend]

    def kernels(self, op: str | None = None, backend: str | None = None) -> list[Kernel]:
        ops = [op] if op is not None else sorted(self._kernels)
        found = [k for o in ops for k in self._kernels.get(o, [])]
        return [k for k in found if backend is None or k.backend == backend]

    def backend_kernel(
        self,
        op: str,
        backend: str,
        capabilities: Capabilities | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> tuple[Kernel | None, list[Rejection]]:
        """The best kernel `backend` itself provides for `op` (no reference fallback)."""
        rejected: list[Rejection] = []
        for k in sorted(self.kernels(op, backend), key=lambda k: -k.priority):
            why = k.reject_reason(capabilities, config)
            if why is None:
                return k, rejected
            rejected.append(Rejection(k.name, k.backend, why))
        return None, rejected

    def resolve(
        self,
        op: str,
        backend: str,
        capabilities: Capabilities | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Resolution:
        chosen, rejected = self.backend_kernel(op, backend, capabilities, config)
        if chosen is None and backend != REFERENCE:
            chosen, more = self.backend_kernel(op, REFERENCE, None, config)
            rejected += more
        if chosen is None:
            raise LookupError(f"no kernel can run {op} (is the reference backend registered?)")
        for k in self.kernels(op):
            if k is chosen or any(r.kernel == k.name for r in rejected):
                continue
            if k.backend not in (backend, REFERENCE):
                reason = f"belongs to backend {k.backend!r}, not the selected {backend!r}"
            else:
                reason = f"lower priority than {chosen.name!r}"
            rejected.append(Rejection(k.name, k.backend, reason))
        return Resolution(op, chosen, tuple(rejected))


@dataclass(frozen=True)
class KernelRegistrar:
    """What a backend's `sglang_backend_register_kernels` hook receives: registration bound to
    that backend's name."""

    registry: KernelRegistry
    backend: str

    def register(
        self,
        op: str,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        priority: int = 0,
        requires: tuple[str, ...] = (),
        available: Callable[[], str | None] | None = None,
        unsupported: Callable[[Mapping[str, Any]], str | None] | None = None,
        prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Kernel:
        kernel = Kernel(
            op=op,
            backend=self.backend,
            name=name or f"{self.backend}.{getattr(fn, '__name__', op)}",
            fn=fn,
            priority=priority,
            requires=tuple(requires),
            available=available,
            unsupported=unsupported,
            prepare=prepare,
        )
        self.registry.add(kernel)
        return kernel
