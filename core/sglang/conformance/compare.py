"""Metrics the conformance suite compares a backend's outputs with the float64 oracle by.

Order, as in ggml's test-backend-ops: shapes first, then non-finite values (NaN/Inf must sit
exactly where the reference has them), then the spec's metric over the finite values.
"""

from __future__ import annotations

import math

import torch

from sglang.ops.spec import ALLCLOSE, EXACT, GLOBAL, Tolerance

Outcome = tuple[bool, float, str]  # (ok, error value, detail)


def compare_outputs(
    metric: str, ref: list[torch.Tensor], out: list[torch.Tensor], tol: Tolerance
) -> Outcome:
    if len(ref) != len(out):
        return False, float("inf"), f"kernel returned {len(out)} outputs, reference {len(ref)}"
    worst: Outcome = (True, 0.0, "")
    for i, (r, o) in enumerate(zip(ref, out)):
        ok, err, detail = compare_tensor(metric, r, o, tol)
        if not ok:
            return False, err, f"output {i}: {detail}"
        if err >= worst[1]:
            worst = (True, err, f"output {i}: {detail}" if len(ref) > 1 else detail)
    return worst


def compare_tensor(metric: str, ref: torch.Tensor, out: torch.Tensor, tol: Tolerance) -> Outcome:
    if not isinstance(out, torch.Tensor):
        return False, float("inf"), f"expected a tensor, got {type(out).__name__}"
    if tuple(out.shape) != tuple(ref.shape):
        return False, float("inf"), f"shape {tuple(out.shape)} != reference {tuple(ref.shape)}"
    out = out.detach().cpu()
    if metric == EXACT or not (ref.is_floating_point() or ref.is_complex()):
        return _exact(ref, out)
    r, o = ref.to(torch.float64), out.to(torch.float64)
    r_bad, o_bad = ~torch.isfinite(r), ~torch.isfinite(o)
    if not torch.equal(r_bad, o_bad):
        n = int((r_bad != o_bad).sum())
        return False, float("inf"), f"{n} element(s) non-finite in one of output/reference only"
    if r_bad.any():
        same = (r[r_bad] == o[o_bad]) | (torch.isnan(r[r_bad]) & torch.isnan(o[o_bad]))
        if not bool(same.all()):
            return False, float("inf"), "non-finite values differ from the reference"
        keep = ~r_bad
        r, o = r[keep], o[keep]
    if r.numel() == 0:
        return True, 0.0, "empty"
    diff = (o - r).abs()
    ref_norm = float(r.norm())
    rel_rms = float(diff.norm()) / ref_norm if ref_norm > 0 else float(diff.norm())
    norms = f"rel_rms {rel_rms:.3g}"
    if metric == ALLCLOSE:
        bound = tol.atol + tol.rtol * r.abs()
        bad = diff > bound
        max_abs = float(diff.max())
        if bool(bad.any()):
            idx = int(torch.argmax((diff - bound).flatten()))
            return (
                False,
                max_abs,
                f"{int(bad.sum())}/{r.numel()} elements outside atol={tol.atol} rtol={tol.rtol}; "
                f"max |diff| {max_abs:.3g}; worst: out={float(o.flatten()[idx]):.6g} "
                f"ref={float(r.flatten()[idx]):.6g}",
            )
        if tol.rel_rms and rel_rms > tol.rel_rms:
            return False, max_abs, _rel_rms_failure(rel_rms, tol, o, r)
        return True, max_abs, f"max |diff| {max_abs:.3g}; {norms}"
    if metric == GLOBAL:
        nmse = rel_rms**2
        ref_rms = ref_norm / math.sqrt(r.numel())
        peak = float(diff.max()) / ref_rms if ref_rms > 0 else float(diff.max())
        detail = f"normalised squared error {nmse:.3g}; {norms}; peak {peak:.3g}"
        if tol.max_error and nmse > tol.max_error:
            return False, nmse, f"{detail} (max NMSE {tol.max_error:.3g})"
        if tol.rel_rms and rel_rms > tol.rel_rms:
            return False, nmse, _rel_rms_failure(rel_rms, tol, o, r)
        if tol.peak and peak > tol.peak:
            idx = int(torch.argmax(diff.flatten()))
            return (
                False,
                nmse,
                (
                    f"peak error {peak:.3g} x rms(ref) > {tol.peak:.3g} at element {idx}: "
                    f"out={float(o.flatten()[idx]):.6g} ref={float(r.flatten()[idx]):.6g}"
                ),
            )
        return True, nmse, detail
    raise ValueError(f"unknown metric {metric!r}")


def _rel_rms_failure(rel_rms: float, tol: Tolerance, o: torch.Tensor, r: torch.Tensor) -> str:
    """Say whether the error looks systematic: the least-squares scale of out against ref."""
    denom = float((r * r).sum())
    scale = float((o * r).sum()) / denom if denom > 0 else float("nan")
    return (
        f"relative RMS error {rel_rms:.3g} > {tol.rel_rms:.3g} (NMSE {rel_rms**2:.3g}); "
        f"out ~ {scale:.5f} x ref"
    )


def _exact(ref: torch.Tensor, out: torch.Tensor) -> Outcome:
    if out.dtype != ref.dtype and not (out.is_floating_point() and ref.is_floating_point()):
        out = out.to(ref.dtype)
    if ref.is_floating_point():
        equal = (ref.to(torch.float64) == out.to(torch.float64)) | (
            torch.isnan(ref.to(torch.float64)) & torch.isnan(out.to(torch.float64))
        )
    else:
        equal = ref == out
    mismatches = int((~equal).sum())
    if mismatches:
        return False, float(mismatches), f"{mismatches}/{ref.numel()} elements differ"
    return True, 0.0, "exact"


def rel_rms_error(ref: list[torch.Tensor], out: list[torch.Tensor]) -> float | None:
    """The largest ||out - ref|| / ||ref|| over the finite values of the float outputs (None
    when there is none to measure), recorded in the report for every check."""
    worst = None
    for r, o in zip(ref, out):
        if not (isinstance(r, torch.Tensor) and isinstance(o, torch.Tensor)):
            continue
        if not r.is_floating_point() or r.shape != o.shape or r.numel() == 0:
            continue
        r64, o64 = r.to(torch.float64), o.detach().cpu().to(torch.float64)
        keep = torch.isfinite(r64) & torch.isfinite(o64)
        diff, norm = float((o64 - r64)[keep].norm()), float(r64[keep].norm())
        value = diff / norm if norm > 0 else diff
        worst = value if worst is None else max(worst, value)
    return worst
