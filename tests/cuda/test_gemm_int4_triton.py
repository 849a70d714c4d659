"""gemm.int4: the cuda backend's W4A16 Triton kernel (weights repacked by its prepare) against
the spec's reference through the conformance runner: AWQ, GPTQ, act-order, float zero points
(in Triton's interpreter where there is no GPU)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
import torch
from sglang_triton import gemm_int4


def small(case):
    p = case.params
    if p["m"] == 33:  # one large case per packing family is enough in the interpreter
        return case.dtype == torch.bfloat16 and p["variant"] in ("awq", "gptq-actorder")
    return p["k"] <= 1152 and (p["m"] <= 7 or case.dtype == torch.bfloat16)


@pytest.mark.parametrize("case", kc.params("gemm.int4", small))
def test_int4(case):
    kc.check("gemm.int4", gemm_int4.int4, case, prepare=gemm_int4.prepare)


@pytest.mark.parametrize("case", kc.params("gemm.int4", lambda c: c.name.startswith("bf16-M7")))
def test_int4_unprepared_and_unaligned_groups(case, monkeypatch):
    monkeypatch.setattr(gemm_int4, "_tiles", lambda m, g: (16, 32, 64))  # G=32: gathered scales
    kc.check("gemm.int4", gemm_int4.int4, case)


def _bf16_case(variant, m):
    """A bf16 gemm.int4 case's inputs (M rows, K 1024, N 48, group 128)."""
    from sglang.ops import get_spec
    from sglang.ops.spec import Case

    params = {"m": m, "k": 1024, "n": 48, "bias": True, "variant": variant, "group_size": 128}
    case = Case("gemm.int4", f"pairs-{variant}-M{m}", torch.bfloat16, params, ())
    args = get_spec("gemm.int4").make_inputs(case, torch.Generator().manual_seed(7))
    return {k: v.to(kc.DEVICE) if isinstance(v, torch.Tensor) else v for k, v in args.items()}


def test_prepare_keeps_float16_pairs_where_they_are_exact(monkeypatch):
    """float16-exact scales and zero points -> (scale, zero) pairs, the same values; float32
    scales float16 cannot hold, a scale past float16's range, or PAIRS off -> the float32 layout
    (zs = zero x scale)."""
    args = _bf16_case("awq", 1)
    w = gemm_int4.prepare(args)["qweight"]
    assert w.scales is None and w.zs is None and w.sz.dtype == torch.float16
    assert w.sz.shape == (1024 // 128, 48, 2) and w.scale_args()[2:] == (48, True)
    assert torch.equal(w.sz[..., 0].float(), args["scales"].float())
    monkeypatch.setattr(gemm_int4, "PAIRS", False)
    f32 = gemm_int4.prepare(args)["qweight"]
    monkeypatch.setattr(gemm_int4, "PAIRS", True)
    assert f32.sz is None and f32.scales.dtype == torch.float32
    assert torch.equal(w.sz[..., 1].float() * w.sz[..., 0].float(), f32.zs)  # z exact, zs = z s
    for scales in (args["scales"].float() * (1 + 2**-15), args["scales"] * 1e7):
        w = gemm_int4.prepare({**args, "scales": scales})["qweight"]
        assert w.sz is None and torch.equal(w.scales, scales.float())


@pytest.mark.parametrize(
    "variant,m",
    (("awq", 1), ("gptq", 3), ("awq-floatzeros", 1), ("gptq-actorder", 2), ("awq", 33)),
)
def test_float16_pairs_and_float32_layout_give_the_same_output(variant, m, monkeypatch):
    """Every Triton path (the tensor-core GEMV, the CUDA-core GEMV, the tiled kernel at 33 rows)
    forms zs = z x s in float32 from the pairs, the product prepare stores: the same output
    bit for bit."""
    args = _bf16_case(variant, m)
    pairs = gemm_int4.prepare(args)["qweight"]
    monkeypatch.setattr(gemm_int4, "PAIRS", False)
    f32 = gemm_int4.prepare(args)["qweight"]
    assert pairs.sz is not None and f32.sz is None
    x, packing = args["x"], args["packing"]
    for launch in (None, {"mma": False}):  # the CUDA-core GEMV (rows <= 4) with mma off
        want = gemm_int4.int4(x, f32, packing, 128, bias=args["bias"], launch=launch)
        got = gemm_int4.int4(x, pairs, packing, 128, bias=args["bias"], launch=launch)
        assert torch.equal(got, want), launch
