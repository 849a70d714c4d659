"""Which GPU family the shared kernels are registered for, and how to launch them there.

A backend registers this package's kernel modules with one `TritonTarget`: its name (kernel
names are "<backend>.triton_..."), the width of its warps (32 threads on NVIDIA, a 64-wide
wavefront on AMD CDNA), its shared memory (LDS on AMD) per workgroup, and launch overrides per
kernel family. A family without overrides is registered as the plain launcher, so the kernels
run exactly as their module defaults say (the cuda backend's tables are those defaults).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

WARP = 32  # the module defaults count warps of 32 threads


@dataclass(frozen=True)
class TritonTarget:
    backend: str
    blas: str = "blas"  # the library behind torch's matmul: "cublas", "hipblaslt" (kernel names)
    warp_size: int = WARP
    shared_memory: int = 228 << 10  # bytes a workgroup may use (H100/H200: 227 KiB)
    launch: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def launch_for(self, family: str) -> dict[str, Any] | None:
        """Launch overrides for a kernel family ("norm", "attention.decode", ...): the table's
        entry, plus the warp size where it is not 32; None when there are none."""
        cfg = dict(self.launch.get(family, {}))
        if self.warp_size != WARP:
            cfg.setdefault("warp_size", self.warp_size)
        return cfg or None

    def bind(self, fn: Callable[..., Any], family: str) -> Callable[..., Any]:
        """`fn` launched with this target's overrides for `family` (fn itself without any)."""
        cfg = self.launch_for(family)
        if cfg is None:
            return fn
        bound = functools.partial(fn, launch=cfg)
        functools.update_wrapper(bound, fn)
        return bound

    def name(self, kernel: str) -> str:
        return f"{self.backend}.{kernel}"


def warps(n: int, launch: Mapping[str, Any] | None) -> int:
    """`n` warps of 32 threads counted in the target's warps: the same threads in fewer,
    wider wavefronts on AMD (at least one)."""
    if not launch:
        return n
    return max(1, n * WARP // int(launch.get("warp_size", WARP)))


def merged(defaults: Mapping[str, Any], launch: Mapping[str, Any] | None) -> dict[str, Any]:
    """A module's default launch table with a target's overrides on top."""
    return dict(defaults) if not launch else {**defaults, **launch}
