"""gemm.int4_rms: a decoder layer's RMSNorm (with the residual add before it) and the W4A16
projection that reads it, as one op: gemm.dense_rms for a layer served by gemm.int4 (an AWQ or
GPTQ checkpoint, `--quantization int4`, a GGUF file's 4-bit codes).

Why: at batch-1 decode the norm is a launch of its own between two GEMVs, twice a layer (64
launches a Llama-8B step, ~0.14 ms of its 2.4 on an H100: docs/benchmarks.md). A W4A16 GEMV
whose blocks each cover all of K can compute the row's sum of squares beside its products and
scale its sums by the reciprocal RMS at the end, as gemm.dense_rms does. A layer takes this op
only where its backend serves it with a kernel of its own and that kernel takes the weights as
the same backend's gemm.int4 prepared them (`Linear.fuses_norm`), else the two ops.

Semantics, the composition of the two specs: h = x + residual (x without one); normed =
norm.rms(h) rounded to x.dtype; y = gemm.int4(normed, ...). Returns y; then h (the new residual
stream) when a residual is given; then normed when return_normed.
"""

from __future__ import annotations

import torch

from sglang.ops import gemm_int4
from sglang.ops.gemm import global_tolerances
from sglang.ops.norm import rms_norm
from sglang.ops.spec import GLOBAL, Case, OpSpec, case_name, randn
from sglang.ops.specs import register_spec


def int4_rms(
    x: torch.Tensor,
    norm_weight: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor,
    packing: str,
    group_size: int,
    eps: float = 1e-6,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    return_normed: bool = False,
):
    """x, residual: [M, K]; norm_weight: [K]; the int4 weight as gemm.int4 takes it -> y [M, N]
    (, h [M, K] with a residual) (, normed [M, K] with return_normed), in x.dtype."""
    if residual is None:
        normed, h = rms_norm(x, norm_weight, eps), None
    else:
        normed, h = rms_norm(x, norm_weight, eps, residual)
    y = gemm_int4.int4(normed, qweight, scales, qzeros, packing, group_size, g_idx, bias)
    out = [y] + ([h] if h is not None else []) + ([normed] if return_normed else [])
    return out[0] if len(out) == 1 else tuple(out)


# (M, K, N, bias): an empty batch, decode rows (a Llama-8B-like k/v slice at K 4096 in 16-bit
# dtypes), a few rows, a prefill's rows with a ragged N.
SHAPES = ((0, 128, 64, False), (1, 256, 96, True), (1, 1024, 136, False), (7, 224, 136, True))
WIDE_SHAPES = ((1, 4096, 256, False),)
VARIANTS = ("awq", "gptq", "gptq-actorder", "awq-floatzeros")
# (residual, return_normed): the first layer's norm, a later layer's, and a norm with two readers
NORM_VARIANTS = ((False, False), (True, False), (True, True))


def _cases() -> list[Case]:
    cases = []
    for dt in (torch.float32, torch.bfloat16, torch.float16):
        shapes = SHAPES + (WIDE_SHAPES if dt != torch.float32 else ())
        for m, k, n, bias in shapes:
            g = gemm_int4.group_size_for(k)
            for variant in VARIANTS if m == 1 else ("awq", "gptq-actorder"):
                needs = {gemm_int4.VARIANTS[variant][2]}
                needs |= set(gemm_int4._scheme_of(gemm_int4.VARIANTS[variant]))
                for residual, normed in NORM_VARIANTS:
                    parts = ("residual" if residual else "", "normed" if normed else "")
                    name = case_name(
                        dt,
                        f"M{m}",
                        f"K{k}",
                        f"N{n}",
                        variant,
                        f"G{g}",
                        *parts,
                        "bias" if bias else "",
                    )
                    params = {"m": m, "k": k, "n": n, "bias": bias, "variant": variant}
                    params |= {"group_size": g, "residual": residual, "normed": normed}
                    cases.append(Case("gemm.int4_rms", name, dt, params, tuple(sorted(needs))))
    return cases


def _inputs(case: Case, gen: torch.Generator) -> dict:
    """gemm.int4's inputs for the same shape and variant, then the norm's."""
    p, dt = case.params, case.dtype
    args = gemm_int4._inputs(case, gen)
    args["norm_weight"] = randn(gen, p["k"], dtype=dt, scale=0.1) + 1.0
    args["eps"] = 1e-6
    if p["residual"]:
        args["residual"] = randn(gen, p["m"], p["k"], dtype=dt)
    if p["normed"]:
        args["return_normed"] = True
    return args


SPEC = register_spec(
    OpSpec(
        name="gemm.int4_rms",
        signature=(
            "(x[M,K], norm_weight[K], qweight, scales[K/G,N], qzeros, packing, group_size, eps, "
            "g_idx=None, bias=None, residual[M,K]=None, return_normed=False) -> y [M,N] "
            "(, x+residual) (, normed); the int4 weight as gemm.int4 takes it"
        ),
        reference=int4_rms,
        cases=_cases,
        make_inputs=_inputs,
        # gemm.int4's bounds with one rounding more: a fused kernel may scale its float32 sums
        # by the row's reciprocal RMS instead of reading the normed row rounded to the dtype
        tolerances=global_tolerances(roundings=4),
        metric=GLOBAL,
        weight_args=("qweight", "scales", "qzeros", "g_idx"),
    )
)
