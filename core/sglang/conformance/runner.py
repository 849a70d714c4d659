"""Run one conformance case of one op spec against one backend.

The oracle: the spec's reference run on float64 copies of the inputs (quantized tensors such
as fp8 or packed int4 stay as they are: they are data, not precision). The backend's own kernel
(never the reference fallback) runs on copies moved to its device, its weight arguments first
passed through its `prepare` when it has one (as layers do at load time). Statuses:

  passed    the kernel's outputs meet the spec's metric and tolerance
  failed    they do not, or the kernel raised, or an expected failure passed (strict)
  xfailed   failed, as the backend's manifest says it will (with its reason)
  skipped   unsupported: a capability is missing or the backend has no kernel for the case
"""

from __future__ import annotations

import copy
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch

from sglang.backend.discovery import LoadedBackend
from sglang.conformance.compare import compare_outputs
from sglang.ops.registry import KernelRegistry, prepared_arguments
from sglang.ops.spec import Case, OpSpec, Tolerance

PASSED, FAILED, XFAILED, SKIPPED = "passed", "failed", "xfailed", "skipped"
LOW_PRECISION_FLOATS = (torch.float16, torch.bfloat16, torch.float32)


@dataclass
class CheckResult:
    id: str
    op: str
    backend: str
    status: str
    dtype: str
    metric: str
    kernel: str | None = None
    error: float | None = None
    tolerance: dict[str, float] = field(default_factory=dict)
    tolerance_reason: str | None = None
    reason: str = ""
    capabilities: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Target:
    """One backend under test: its record, the registry and its runtime."""

    backend: LoadedBackend
    registry: KernelRegistry
    runtime: Any

    @property
    def name(self) -> str:
        return self.backend.name


def to_oracle(value: Any) -> Any:
    """Deep-copy `value`, promoting low-precision float tensors to float64."""
    if isinstance(value, torch.Tensor):
        if value.dtype in LOW_PRECISION_FLOATS:
            return value.detach().to(torch.float64).clone()
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(to_oracle(v) for v in value)
    if isinstance(value, dict):
        return {k: to_oracle(v) for k, v in value.items()}
    return copy.deepcopy(value)


def to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone().to(device)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return copy.deepcopy(value)


def collect(spec: OpSpec, returned: Any, inputs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors to compare: the mutated arguments, or the flattened return value."""
    if spec.mutates:
        return [inputs[name].detach().cpu() for name in spec.mutates]
    items = returned if isinstance(returned, (tuple, list)) else [returned]
    return [t.detach().cpu() if isinstance(t, torch.Tensor) else t for t in items]


def run_case(target: Target, spec: OpSpec, case: Case) -> CheckResult:
    caps = target.backend.capabilities
    required = list(spec.required_capabilities(case))
    result = CheckResult(
        id=case.id,
        op=spec.name,
        backend=target.name,
        status=SKIPPED,
        dtype=str(case.dtype).removeprefix("torch."),
        metric=spec.metric,
        capabilities=required,
    )
    missing = caps.missing(required)
    if missing:
        result.reason = "missing capability: " + ", ".join(missing)
        return result
    config = {**case.params, "dtype": case.dtype}
    kernel, rejected = target.registry.backend_kernel(spec.name, target.name, caps, config)
    if kernel is None:
        why = "; ".join(f"{r.kernel}: {r.reason}" for r in rejected)
        result.reason = "unsupported: " + (why or f"backend registers no kernel for {spec.name}")
        return result
    result.kernel = kernel.name

    manifest = target.backend.conformance_manifest()
    tol = spec.tolerance(case.dtype)
    override = manifest.tolerance_override(case.id)
    if override is not None:
        tol = Tolerance(
            atol=tol.atol if override.atol is None else override.atol,
            rtol=tol.rtol if override.rtol is None else override.rtol,
            max_error=tol.max_error if override.max_error is None else override.max_error,
        )
        result.tolerance_reason = override.reason
    result.tolerance = tol.to_json()

    start = time.perf_counter()
    gen = torch.Generator().manual_seed(case.seed)
    inputs = spec.make_inputs(case, gen)
    oracle_inputs = to_oracle(inputs)
    expected = collect(spec, spec.reference(**oracle_inputs), oracle_inputs)
    try:
        dev_inputs = to_device(inputs, target.runtime.device)
        call_args = prepared_arguments(kernel, dev_inputs)
        returned = kernel.fn(**call_args)
        target.runtime.synchronize()
        got = collect(spec, returned, dev_inputs)
        if spec.compare is not None:
            ok, err, detail = spec.compare(case, expected, got, tol)
        else:
            ok, err, detail = compare_outputs(spec.metric, expected, got, tol)
    except Exception:
        ok, err, detail = False, None, "kernel raised:\n" + traceback.format_exc(limit=6)
    result.duration_s = round(time.perf_counter() - start, 4)
    result.error = err
    expected_failure = manifest.expected_failure(case.id)
    if expected_failure is None:
        result.status, result.reason = (PASSED if ok else FAILED), detail
    elif ok:
        result.status = FAILED
        result.reason = f"passed but listed as an expected failure ({expected_failure.reason})"
    else:
        result.status = XFAILED
        result.reason = f"{expected_failure.reason} | {detail}"
    return result
