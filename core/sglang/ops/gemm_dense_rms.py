"""gemm.dense_rms: a decoder layer's RMSNorm (with the residual add before it) and the dense
projection that reads it, as one op.

Why an op of its own: at batch-1 decode the norm is a launch of its own between two GEMVs
(~2 us of dependent latency, twice a layer). Its only row-wide quantity is one number, the
reciprocal RMS, so a GEMV can compute it beside its dot products (each block's warps cover all of
K) and scale its sums at the end: the norm costs no launch. A layer takes this op only where its
backend has a kernel of its own for it (`OpTable.native`), else the two ops (the rope.qk_norm
precedent).

Semantics, the composition of the two specs: h = x + residual (x without one); normed =
norm.rms(h) rounded to x.dtype; y = gemm.dense(normed, weight, bias). Returns y; then h (the
new residual stream) when a residual is given; then normed when return_normed (for a second
reader of the normed row, e.g. a mixture-of-experts block's experts after its router).
"""

from __future__ import annotations

import torch

from sglang.ops.gemm import dense, linear_weight
from sglang.ops.norm import rms_norm
from sglang.ops.precision import with_error_bounds
from sglang.ops.spec import Case, OpSpec, Tolerance, case_name, randn
from sglang.ops.specs import register_spec


def dense_rms(
    x: torch.Tensor,
    norm_weight: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    return_normed: bool = False,
):
    """x, residual: [M, K]; norm_weight: [K]; weight: [N, K]; bias: [N] or None ->
    y [M, N] (, h [M, K] with a residual) (, normed [M, K] with return_normed), in x.dtype."""
    if residual is None:
        normed, h = rms_norm(x, norm_weight, eps), None
    else:
        normed, h = rms_norm(x, norm_weight, eps, residual)
    out = [dense(normed, weight, bias)]
    if h is not None:
        out.append(h)
    if return_normed:
        out.append(normed)
    return out[0] if len(out) == 1 else tuple(out)


# (M, K, N, bias): an empty batch, decode rows (Qwen3-30B-A3B's router and a slice of its qkv),
# a few rows, ragged sizes; bfloat16 adds Llama-3-8B's k/v projection at one row.
SHAPES = (
    (0, 64, 48, False),
    (1, 128, 96, True),
    (1, 2048, 128, False),
    (3, 576, 130, True),
    (17, 1000, 257, False),
)
BF16_SHAPES = ((1, 4096, 1024, False),)
# (residual, return_normed): the first layer's norm, a later layer's, and a norm with two readers
VARIANTS = ((False, False), (True, False), (True, True))


def _cases() -> list[Case]:
    cases = []
    for dt in (torch.float32, torch.bfloat16, torch.float16):
        for m, k, n, bias in SHAPES + (BF16_SHAPES if dt == torch.bfloat16 else ()):
            for residual, normed in VARIANTS:
                parts = ("residual" if residual else "", "normed" if normed else "")
                name = case_name(dt, f"M{m}", f"K{k}", f"N{n}", *parts, "bias" if bias else "")
                params = {"m": m, "k": k, "n": n, "bias": bias, "residual": residual}
                cases.append(Case("gemm.dense_rms", name, dt, {**params, "normed": normed}))
    return cases


def _inputs(case: Case, gen: torch.Generator) -> dict:
    p, dt = case.params, case.dtype
    args = {
        "x": randn(gen, p["m"], p["k"], dtype=dt),
        "norm_weight": randn(gen, p["k"], dtype=dt, scale=0.1) + 1.0,
        "weight": linear_weight(gen, p["n"], p["k"]).to(dt),
        "eps": 1e-6,
    }
    if p["bias"]:
        args["bias"] = randn(gen, p["n"], dtype=dt, scale=0.5)
    if p["residual"]:
        args["residual"] = randn(gen, p["m"], p["k"], dtype=dt)
    if p["normed"]:
        args["return_normed"] = True
    return args


SPEC = register_spec(
    OpSpec(
        name="gemm.dense_rms",
        signature=(
            "(x[M,K], norm_weight[K], weight[N,K], eps, bias[N]=None, residual[M,K]=None, "
            "return_normed=False) -> y [M,N] (, x+residual) (, normed)"
        ),
        reference=dense_rms,
        cases=_cases,
        make_inputs=_inputs,
        # gemm.dense's bounds with one rounding more: a fused kernel may scale its float32
        # sums by the row's reciprocal RMS instead of reading the normed row rounded to the
        # dtype (the composition rounds it), so y differs from the reference by that rounding.
        tolerances=with_error_bounds(
            {
                torch.float32: Tolerance(atol=1e-4, rtol=1e-4),
                torch.float16: Tolerance(atol=2e-3, rtol=2e-3),
                torch.bfloat16: Tolerance(atol=1.6e-2, rtol=1.6e-2),
            },
            roundings=3,
            accumulation=4096,
        ),
        weight_args=("weight", "norm_weight"),
    )
)
