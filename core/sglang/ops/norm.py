"""norm.rms: RMSNorm, optionally fused with the residual add that precedes it."""

from __future__ import annotations

import torch

from sglang.ops.precision import with_error_bounds
from sglang.ops.spec import Case, OpSpec, Tolerance, case_name, compute_dtype, randn
from sglang.ops.specs import register_spec


def rms_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    residual: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """x: [T, D], weight: [D]. Without residual: weight * x / rms(x).
    With residual: h = x + residual; returns (weight * h / rms(h), h), the second being the
    new residual stream. Statistics in float32 (float64 under the oracle); outputs in x.dtype."""
    acc = compute_dtype(x)
    h = x.to(acc)
    if residual is not None:
        h = h + residual.to(acc)
    var = h.pow(2).mean(dim=-1, keepdim=True)
    out = (h * torch.rsqrt(var + eps) * weight.to(acc)).to(x.dtype)
    if residual is None:
        return out
    return out, h.to(x.dtype)


def _cases() -> list[Case]:
    cases = []
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        for tokens, dim in ((0, 64), (1, 128), (7, 576), (33, 4096)):
            for residual in (False, True):
                name = case_name(dtype, f"T{tokens}", f"D{dim}", "residual" if residual else "")
                cases.append(
                    Case(
                        "norm.rms",
                        name,
                        dtype,
                        {"tokens": tokens, "dim": dim, "residual": residual},
                    )
                )
    return cases


def _inputs(case: Case, gen: torch.Generator) -> dict:
    t, d, dt = case.params["tokens"], case.params["dim"], case.dtype
    args = {
        "x": randn(gen, t, d, dtype=dt),
        "weight": randn(gen, d, dtype=dt, scale=0.1) + 1.0,
        "eps": 1e-6,
    }
    if case.params["residual"]:
        args["residual"] = randn(gen, t, d, dtype=dt)
    return args


SPEC = register_spec(
    OpSpec(
        name="norm.rms",
        signature="(x[T,D], weight[D], eps, residual[T,D]=None) -> out | (out, x+residual)",
        reference=rms_norm,
        cases=_cases,
        make_inputs=_inputs,
        # rel_rms: two roundings to the dtype (the normalised row, as Hugging Face rounds it
        # before the weight, and the output) and a float32 sum of squares over D <= 4096.
        tolerances=with_error_bounds(
            {
                torch.float32: Tolerance(atol=1e-5, rtol=1e-5),
                torch.float16: Tolerance(atol=2e-3, rtol=2e-3),
                torch.bfloat16: Tolerance(atol=1.6e-2, rtol=1.6e-2),
            },
            roundings=2,
            accumulation=4096,
        ),
    )
)
