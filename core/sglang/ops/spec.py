"""Op specs: the core's definition of each operation a backend may implement.

An `OpSpec` names one operation and carries everything needed to check an implementation of
it: the plain-torch reference (the semantics, and the oracle when run in float64), a list of
cases with an input generator (ragged batches, odd sizes, empty inputs where legal), a
tolerance per dtype, the metric, and the capability keys the op needs.

Calling convention: every op is called with keyword arguments only, named as in the spec's
`signature`. An op either returns its result (a tensor or a tuple of tensors) or, when
`mutates` is set, writes into those arguments in place and returns None.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

ALLCLOSE = "allclose"  # |out - ref| <= atol + rtol * |ref|, element-wise, and rel_rms
GLOBAL = "global"  # rel_rms and peak (plus NMSE <= max_error where set), no element-wise check
EXACT = "exact"  # bit-for-bit equal (indices, masks, in-place copies)
METRICS = (ALLCLOSE, GLOBAL, EXACT)

DTYPE_NAMES = {
    torch.float32: "f32",
    torch.float16: "f16",
    torch.bfloat16: "bf16",
    torch.float64: "f64",
}


@dataclass(frozen=True)
class Tolerance:
    """Bounds on a float output's error against the float64 oracle (0 = not checked).

    atol, rtol  element-wise: |out - ref| <= atol + rtol * |ref| (ALLCLOSE)
    rel_rms     normalised error of the whole output: ||out - ref||_2 / ||ref||_2 (NMSE is its
                square); catches systematic errors (a 1% scale) that element-wise bounds sized
                for the worst element let through. Derived in sglang.ops.precision.
    peak        max |out - ref| / rms(ref): one wrong element, for GLOBAL metrics
    max_error   NMSE bound for GLOBAL metrics (kept for manifests that state one)
    """

    atol: float = 0.0
    rtol: float = 0.0
    max_error: float = 0.0
    rel_rms: float = 0.0
    peak: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {
            "atol": self.atol,
            "rtol": self.rtol,
            "max_error": self.max_error,
            "rel_rms": self.rel_rms,
            "peak": self.peak,
        }

    def replace(self, **changes: float | None) -> Tolerance:
        """This tolerance with the given fields replaced (None keeps a field)."""
        kept = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **kept)


@dataclass(frozen=True)
class Case:
    """One conformance case: a stable printable id, its dtype and generator parameters."""

    op: str
    name: str
    dtype: torch.dtype
    params: Mapping[str, Any] = field(default_factory=dict)
    # Capability keys this case needs beyond the spec's own (e.g. "attention:sliding_window").
    requires: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.op}[{self.name}]"

    @property
    def seed(self) -> int:
        """Stable across runs and machines: derived from the id, not from Python's hash."""
        return zlib.crc32(self.id.encode())


@dataclass(frozen=True)
class OpSpec:
    name: str
    signature: str  # "(x, weight, eps, residual=None) -> out | (out, residual_out)" + semantics
    reference: Callable[..., Any]
    cases: Callable[[], list[Case]]
    # make_inputs(case, generator) -> keyword arguments, on the CPU, in the case's dtype.
    make_inputs: Callable[[Case, torch.Generator], dict[str, Any]]
    tolerances: Mapping[torch.dtype, Tolerance]
    metric: str = ALLCLOSE
    mutates: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    # Optional custom comparison: compare(case, ref_outputs, outputs, tol) -> (ok, error, detail)
    # where outputs are lists of tensors on the CPU. Used where order is not semantic (the
    # experts chosen by a router) or where a metric mixes kinds.
    compare: Callable[..., tuple[bool, float, str]] | None = None
    # Arguments that are a layer's weights, fixed at load time (e.g. ("weight",) for a GEMM):
    # what a kernel's `prepare` may turn into its own layout, once (sglang.backend.registry).
    weight_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"{self.name}: unknown metric {self.metric!r}")

    def tolerance(self, dtype: torch.dtype) -> Tolerance:
        try:
            return self.tolerances[dtype]
        except KeyError:
            raise KeyError(f"{self.name}: no tolerance for dtype {dtype}") from None

    def required_capabilities(self, case: Case) -> tuple[str, ...]:
        return (*self.requires, f"dtype:{dtype_key(case.dtype)}", *case.requires)


def dtype_key(dtype: torch.dtype) -> str:
    """The capability-key spelling of a dtype: torch.bfloat16 -> "bfloat16"."""
    return str(dtype).removeprefix("torch.")


def case_name(dtype: torch.dtype, *parts: Any) -> str:
    """Build a case name like "bf16-T7-D64-residual" from a dtype and printable parts."""
    return "-".join([DTYPE_NAMES.get(dtype, dtype_key(dtype)), *(str(p) for p in parts if p != "")])


def randn(
    gen: torch.Generator, *shape: int, dtype: torch.dtype, scale: float = 1.0
) -> torch.Tensor:
    """Seeded normal samples drawn in float32 then cast, so every dtype sees the same values."""
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).to(dtype)


def rand(gen: torch.Generator, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(*shape, generator=gen, dtype=torch.float32).to(dtype)


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype a reference computes in: float32 for low-precision inputs, float64 when the
    oracle runs it on float64 inputs."""
    dt = torch.float32
    for t in tensors:
        if t is not None and t.dtype == torch.float64:
            dt = torch.float64
    return dt
