"""act.silu_mul and act.gelu_mul: the gated activations of a SwiGLU / GeGLU MLP.

Both take the fused gate-up projection x = [gate | up] of shape [T, 2I] and return
act(gate) * up of shape [T, I], in x's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sglang.ops.precision import with_error_bounds
from sglang.ops.spec import Case, OpSpec, Tolerance, case_name, compute_dtype, randn
from sglang.ops.specs import register_spec

GELU_APPROXIMATIONS = ("tanh", "none")


def silu_mul(x: torch.Tensor) -> torch.Tensor:
    """x: [T, 2I] -> [T, I] = silu(x[:, :I]) * x[:, I:], with silu(g) = g * sigmoid(g).
    Computed in float32 (float64 under the oracle); output in x.dtype."""
    half = x.shape[-1] // 2
    h = x.to(compute_dtype(x))
    return (F.silu(h[..., :half]) * h[..., half:]).to(x.dtype)


def gelu_mul(x: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    """x: [T, 2I] -> [T, I] = gelu(x[:, :I]) * x[:, I:]. approximate="none" is the exact
    erf form, "tanh" the tanh approximation (torch.nn.functional.gelu's two modes).
    Computed in float32 (float64 under the oracle); output in x.dtype."""
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"approximate must be one of {GELU_APPROXIMATIONS}, got {approximate!r}")
    half = x.shape[-1] // 2
    h = x.to(compute_dtype(x))
    return (F.gelu(h[..., :half], approximate=approximate) * h[..., half:]).to(x.dtype)


# (tokens, intermediate): empty, odd sizes, a ragged batch, a realistic decode step (Llama-3-8B).
SHAPES = ((0, 64), (1, 11), (7, 333), (33, 1408), (4, 14336))
DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# One rounding of the output, plus the kernel's rounding of act(gate) where it computes in
# the input dtype: two half-ulps of relative error, and atol for results near zero.
# rel_rms: the same two roundings, and the float32 evaluation of exp/tanh/erf counted as ~16
# float32 operations (a polynomial or a library call), which only the float32 bound feels.
TOLERANCES = with_error_bounds(
    {
        torch.float32: Tolerance(atol=1e-5, rtol=1e-5),
        torch.float16: Tolerance(atol=1e-3, rtol=2e-3),
        torch.bfloat16: Tolerance(atol=8e-3, rtol=1.6e-2),
    },
    roundings=2,
    accumulation=16,
)


def _silu_cases() -> list[Case]:
    return [
        Case("act.silu_mul", case_name(dt, f"T{t}", f"I{i}"), dt, {"tokens": t, "inter": i})
        for dt in DTYPES
        for t, i in SHAPES
    ]


def _gelu_cases() -> list[Case]:
    return [
        Case(
            "act.gelu_mul",
            case_name(dt, f"T{t}", f"I{i}", approx),
            dt,
            {"tokens": t, "inter": i, "approximate": approx},
        )
        for dt in DTYPES
        for t, i in SHAPES
        for approx in GELU_APPROXIMATIONS
    ]


def _inputs(case: Case, gen: torch.Generator) -> dict:
    t, i = case.params["tokens"], case.params["inter"]
    args = {"x": randn(gen, t, 2 * i, dtype=case.dtype, scale=2.0)}
    if "approximate" in case.params:
        args["approximate"] = case.params["approximate"]
    return args


SILU_SPEC = register_spec(
    OpSpec(
        name="act.silu_mul",
        signature="(x[T,2I]) -> out[T,I] = silu(x[:, :I]) * x[:, I:]",
        reference=silu_mul,
        cases=_silu_cases,
        make_inputs=_inputs,
        tolerances=TOLERANCES,
    )
)

GELU_SPEC = register_spec(
    OpSpec(
        name="act.gelu_mul",
        signature='(x[T,2I], approximate="tanh"|"none") -> out[T,I] = gelu(x[:, :I]) * x[:, I:]',
        reference=gelu_mul,
        cases=_gelu_cases,
        make_inputs=_inputs,
        tolerances=TOLERANCES,
    )
)
