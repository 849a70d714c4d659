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
import fnmatch
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch

from sglang.backend.discovery import LoadedBackend
from sglang.backend.registry import Kernel, KernelRegistry, prepared_arguments
from sglang.conformance.compare import compare_outputs, rel_rms_error
from sglang.ops.spec import Case, OpSpec

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
    rel_rms: float | None = None  # ||out - ref|| / ||ref|| over the float outputs

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


def backend_kernels(target: Target, op: str, pattern: str | None = None) -> list[Kernel]:
    """Every kernel the backend registers for `op`, highest priority first (the first one that
    accepts a configuration serves it; the others serve when it declines). `pattern` (fnmatch
    over kernel names) narrows them, as `--kernel` does."""
    kernels = sorted(target.registry.kernels(op, target.name), key=lambda k: -k.priority)
    if pattern:
        kernels = [k for k in kernels if fnmatch.fnmatchcase(k.name, pattern)]
    return kernels


def expected_dtypes(case: Case, oracle_outputs: list[Any]) -> list[torch.dtype | None]:
    """The dtype each output must have: the case's dtype where the oracle computed a float64
    value from promoted inputs, else the oracle's own dtype (indices, float32 router weights)."""
    return [
        (case.dtype if t.dtype == torch.float64 else t.dtype)
        if isinstance(t, torch.Tensor)
        else None
        for t in oracle_outputs
    ]


def run_case(
    target: Target, spec: OpSpec, case: Case, kernel: Kernel | str | None = None
) -> CheckResult:
    """Check one case on one kernel of the backend: `kernel` (an object or a registered name),
    or, when None, the kernel the backend would choose for the case."""
    caps = target.backend.capabilities
    required = list(spec.required_capabilities(case))
    result = CheckResult(
        id=case.id,
        op=spec.name,
        backend=target.name,
        status=SKIPPED,
        dtype=str(case.dtype).removeprefix("torch."),
        metric=spec.metric,
        kernel=kernel.name if isinstance(kernel, Kernel) else kernel,
        capabilities=required,
    )
    missing = caps.missing(required)
    if missing:
        result.reason = "missing capability: " + ", ".join(missing)
        return result
    config = {**case.params, "dtype": case.dtype}
    if kernel is None:
        chosen, rejected = target.registry.backend_kernel(spec.name, target.name, caps, config)
        if chosen is None:
            why = "; ".join(f"{r.kernel}: {r.reason}" for r in rejected)
            result.reason = "unsupported: " + (
                why or f"backend registers no kernel for {spec.name}"
            )
            return result
        kernel = chosen
    elif isinstance(kernel, str):
        kernel = next(k for k in backend_kernels(target, spec.name) if k.name == kernel)
    result.kernel = kernel.name
    declined = kernel.reject_reason(caps, config)
    if declined is not None:
        result.reason = f"kernel declines the case: {declined}"
        return result
    return check_kernel(target, spec, case, kernel, result)


def check_kernel(
    target: Target, spec: OpSpec, case: Case, kernel: Kernel, result: CheckResult
) -> CheckResult:
    manifest = target.backend.conformance_manifest()
    tol = spec.tolerance(case.dtype)
    override = manifest.tolerance_override(case.id, kernel.name)
    if override is not None:
        tol = tol.replace(**override.bounds())
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
        untouched = {
            name: value.detach().clone()
            for name, value in call_args.items()
            if isinstance(value, torch.Tensor)
            and value.layout == torch.strided  # opaque prepacked weights cannot be compared
            and name not in spec.mutates
        }
        returned = kernel.fn(**call_args)
        target.runtime.synchronize()
        got = collect(spec, returned, dev_inputs)
        ok, err, detail = _contract(spec, case, expected, got, call_args, untouched)
        if ok:
            if spec.compare is not None:
                ok, err, detail = spec.compare(case, expected, got, tol)
            else:
                ok, err, detail = compare_outputs(spec.metric, expected, got, tol)
        result.rel_rms = rel_rms_error(expected, got)
    except Exception:
        ok, err, detail = False, None, "kernel raised:\n" + traceback.format_exc(limit=6)
    result.duration_s = round(time.perf_counter() - start, 4)
    result.error = err
    expected_failure = manifest.expected_failure(case.id, kernel.name)
    if expected_failure is None:
        result.status, result.reason = (PASSED if ok else FAILED), detail
    elif ok:
        result.status = FAILED
        result.reason = f"passed but listed as an expected failure ({expected_failure.reason})"
    else:
        result.status = XFAILED
        result.reason = f"{expected_failure.reason} | {detail}"
    return result


def _contract(
    spec: OpSpec,
    case: Case,
    expected: list[Any],
    got: list[Any],
    call_args: dict[str, Any],
    untouched: dict[str, torch.Tensor],
) -> tuple[bool, float | None, str]:
    """What holds whatever the values: the inputs a kernel must not write are unchanged, and
    every output has the dtype the op promises."""
    for name, before in untouched.items():
        if not _same(call_args[name].detach().cpu(), before.cpu()):
            allowed = ", ".join(spec.mutates) or "none"
            return False, None, f"kernel wrote into its input {name!r} (writable: {allowed})"
    if len(got) == len(expected):
        for i, (want, out) in enumerate(zip(expected_dtypes(case, expected), got)):
            if want is not None and isinstance(out, torch.Tensor) and out.dtype != want:
                return False, None, f"output {i} has dtype {out.dtype}, the op returns {want}"
    return True, None, ""


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if torch.equal(a, b):
        return True
    if not a.is_floating_point():
        return False
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0))
