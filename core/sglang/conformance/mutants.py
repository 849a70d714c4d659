"""Mutation testing of the suite itself: deliberately broken copies of a backend's real kernels
must fail conformance, in every dtype they run.

Each mutant wraps the kernel the backend would choose for an op and breaks its result the way
real kernels go wrong:

  scaled         every float output times 1.01 (a wrong constant, a forgotten normalisation)
  one_off        one element of the first output off by the output's RMS (integers: by one)
  transposed     outputs written with transposed strides ([a, b] data laid out as [b, a])
  wrong_dtype    outputs returned in another dtype (float32 <-> bfloat16, int64 <-> int32)
  writes_input   the kernel also writes into one of the inputs it may only read

For ops that write into buffers (`spec.mutates`), the buffers are the outputs. A mutant that
cannot express itself on an op (no float output to scale, only 1-D outputs to transpose, a
caller-owned buffer whose dtype it cannot change) is "not applicable", with the reason.

A mutant is killed in a dtype when one of that dtype's cases fails (an expected failure of the
manifest does not count), and killed when it is killed in every dtype it ran in. Cases run in
the spec's order and stop at the first failure, so a mutation run costs a few cases per op.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from sglang.backend.registry import Kernel
from sglang.conformance.runner import (
    FAILED,
    SKIPPED,
    CheckResult,
    Target,
    backend_kernels,
    collect,
)
from sglang.conformance.runner import check_kernel as run_kernel_check
from sglang.ops.spec import Case, OpSpec, dtype_key

Outputs = list[torch.Tensor]


def _float_outputs(outs: Outputs) -> list[torch.Tensor]:
    return [t for t in outs if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _scaled(outs: Outputs, args: dict[str, Any]) -> Outputs:
    return [t * 1.01 if t.is_floating_point() else t for t in outs]


def _one_off(outs: Outputs, args: dict[str, Any]) -> Outputs:
    first = outs[0]
    if first.numel() == 0:
        return outs
    broken = first.clone()
    flat = broken.view(-1)
    if broken.is_floating_point():
        finite = torch.isfinite(flat).nonzero().flatten()
        if finite.numel() == 0:
            return outs
        index = int(finite[(finite - flat.numel() // 2).abs().argmin()])
        rms = float(flat[finite].double().pow(2).mean().sqrt())
        flat[index] += rms if rms > 0 else 1.0
    else:
        flat[flat.numel() // 2] += 1
    return [broken, *outs[1:]]


def _transposed(outs: Outputs, args: dict[str, Any]) -> Outputs:
    broken = []
    for t in outs:
        if t.dim() >= 2 and t.shape[0] > 1 and t[0].numel() > 1:
            rows = t.reshape(t.shape[0], -1)
            t = rows.t().contiguous().view(t.shape)
        broken.append(t)
    return broken


def _wrong_dtype(outs: Outputs, args: dict[str, Any]) -> Outputs:
    swap = {
        torch.float32: torch.bfloat16,
        torch.bfloat16: torch.float32,
        torch.float16: torch.float32,
        torch.int64: torch.int32,
        torch.int32: torch.int64,
    }
    return [t.to(swap.get(t.dtype, torch.float64)) for t in outs]


def _writes_input(outs: Outputs, args: dict[str, Any]) -> Outputs:
    victim = args["__victim__"]
    if victim.numel():
        victim.view(-1)[0] += 1
    return outs


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: Callable[[Outputs, dict[str, Any]], Outputs]
    # why the mutant cannot be expressed on an op, or None
    not_applicable: Callable[[OpSpec, Case, Outputs], str | None] = lambda spec, case, outs: None


def _no_float(spec: OpSpec, case: Case, outs: Outputs) -> str | None:
    return None if _float_outputs(outs) else "no float output to scale"


def _flat_only(spec: OpSpec, case: Case, outs: Outputs) -> str | None:
    return None if any(t.dim() >= 2 for t in outs) else "only 1-D outputs: no stride to transpose"


def _in_place(spec: OpSpec, case: Case, outs: Outputs) -> str | None:
    if spec.mutates:
        return f"writes into the caller's {', '.join(spec.mutates)}: their dtype is the caller's"
    return None


MUTANTS = (
    Mutant("scaled", _scaled, _no_float),
    Mutant("one_off", _one_off),
    Mutant("transposed", _transposed, _flat_only),
    Mutant("wrong_dtype", _wrong_dtype, _in_place),
    Mutant("writes_input", _writes_input),
)


def broken_kernel(spec: OpSpec, kernel: Kernel, mutant: Mutant) -> Kernel:
    """A copy of `kernel` whose results `mutant` breaks."""

    def fn(**kwargs: Any) -> Any:
        returned = kernel.fn(**kwargs)
        victim = _victim(spec, kwargs)
        if mutant.name == "writes_input" and victim is None:
            raise RuntimeError("no input to write into")
        if spec.mutates:
            outs = [kwargs[name] for name in spec.mutates]
            broken = mutant.breaks(outs, {**kwargs, "__victim__": victim})
            for buffer, value in zip(outs, broken):
                if value is not buffer:
                    buffer.copy_(value.view(buffer.shape))
            return returned
        many = isinstance(returned, (tuple, list))
        outs = list(returned) if many else [returned]
        broken = mutant.breaks(outs, {**kwargs, "__victim__": victim})
        return type(returned)(broken) if many else broken[0]

    return dataclasses.replace(kernel, fn=fn, name=f"{kernel.name}~{mutant.name}")


def _victim(spec: OpSpec, kwargs: dict[str, Any]) -> torch.Tensor | None:
    """The first read-only tensor input (the one `writes_input` corrupts)."""
    for name, value in kwargs.items():
        if (
            isinstance(value, torch.Tensor)
            and name not in spec.mutates
            and value.layout == torch.strided
        ):
            return value
    return None


@dataclass
class MutantResult:
    """One mutant of one op's kernel: per dtype, the case that killed it (or why not)."""

    op: str
    mutant: str
    kernel: str
    killed_in: dict[str, str] = field(default_factory=dict)  # dtype -> failing case: why
    survived_in: dict[str, int] = field(default_factory=dict)  # dtype -> cases that passed
    not_applicable: str | None = None

    @property
    def killed(self) -> bool:
        return self.not_applicable is None and bool(self.killed_in) and not self.survived_in

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "killed": self.killed}


def run_mutant(target: Target, spec: OpSpec, kernel: Kernel, mutant: Mutant) -> MutantResult:
    result = MutantResult(spec.name, mutant.name, kernel.name)
    broken = broken_kernel(spec, kernel, mutant)
    by_dtype: dict[torch.dtype, list[Case]] = {}
    for case in spec.cases():
        by_dtype.setdefault(case.dtype, []).append(case)
    first = spec.cases()[0]
    why = mutant.not_applicable(spec, first, _outputs_of(spec, first))
    if why is not None:
        result.not_applicable = why
        return result
    for dtype, cases in by_dtype.items():
        ran = 0
        for case in cases:
            check = _check(target, spec, case, kernel, broken)
            if check is None:
                continue
            ran += 1
            if check.status == FAILED:
                result.killed_in[dtype_key(dtype)] = f"{case.id}: {check.reason.splitlines()[0]}"
                break
        else:
            if ran:
                result.survived_in[dtype_key(dtype)] = ran
    return result


def _check(
    target: Target, spec: OpSpec, case: Case, kernel: Kernel, broken: Kernel
) -> CheckResult | None:
    """The broken kernel's verdict on `case`; None when the real kernel does not run the case
    (a missing capability, or the kernel declines it)."""
    caps = target.backend.capabilities
    if caps.missing(list(spec.required_capabilities(case))):
        return None
    if kernel.reject_reason(caps, {**case.params, "dtype": case.dtype}) is not None:
        return None
    result = CheckResult(
        id=case.id,
        op=spec.name,
        backend=target.name,
        status=SKIPPED,
        dtype=dtype_key(case.dtype),
        metric=spec.metric,
        kernel=broken.name,
    )
    return run_kernel_check(target, spec, case, broken, result)


def _outputs_of(spec: OpSpec, case: Case) -> Outputs:
    """The reference's outputs on a case (what a mutant has to work with)."""
    inputs = spec.make_inputs(case, torch.Generator().manual_seed(case.seed))
    return [
        t for t in collect(spec, spec.reference(**inputs), inputs) if isinstance(t, torch.Tensor)
    ]


def run_mutants(
    target: Target, specs: list[OpSpec], kernel_pattern: str | None = None
) -> list[MutantResult]:
    """Every mutant of the kernel `target` would choose first for each op (its highest-priority
    kernel that can run on this machine, or the ones matching `kernel_pattern`)."""
    results = []
    for spec in specs:
        kernels = backend_kernels(target, spec.name, kernel_pattern)
        if not kernel_pattern:  # (a kernel this CPU lacks the instructions for serves nothing)
            runnable = [k for k in kernels if k.available is None or k.available() is None]
            kernels = (runnable or kernels)[:1]
        for kernel in kernels:
            for mutant in MUTANTS:
                results.append(run_mutant(target, spec, kernel, mutant))
    return results


def mutation_summary(results: list[MutantResult]) -> dict[str, Any]:
    applicable = [r for r in results if r.not_applicable is None]
    return {
        "mutants": len(applicable),
        "killed": sum(r.killed for r in applicable),
        "survived": [f"{r.kernel}~{r.mutant}" for r in applicable if not r.killed],
        "not_applicable": len(results) - len(applicable),
    }
