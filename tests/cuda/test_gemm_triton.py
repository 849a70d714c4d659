"""gemm.int8 (and gemm.dense): the cuda backend's kernels against the spec's reference through
the conformance runner; the Triton scaled GEMM runs in the interpreter where there is no GPU
(where torch._int_mm serves large M on a GPU, the CPU run takes the Triton path for all M)."""

from __future__ import annotations

import kernel_checks as kc
import pytest
from sglang_cuda.kernels import gemm
from sglang_triton import dense


def small(case):
    return case.params["k"] <= 1000 and case.params["n"] <= 512


@pytest.mark.parametrize("case", kc.params("gemm.int8", small))
def test_int8(case):
    kc.check("gemm.int8", gemm.int8, case)


@pytest.mark.parametrize("case", kc.params("gemm.dense", small))
def test_dense(case):
    kc.check("gemm.dense", dense.dense, case)


def _gemv_dense(x, weight, bias=None):
    """gemm.dense with one row forced through the Triton GEMV (on a GPU `dense` picks it by
    itself; under the interpreter its device check would send CPU tensors to F.linear)."""
    from sglang_triton import gemv

    return gemv.gemv(x, weight.to(x.dtype), bias)


@pytest.mark.parametrize(
    "case", kc.params("gemm.dense", lambda c: c.params["m"] == 1 and not c.name.startswith("f32"))
)
def test_dense_one_row_gemv(case):
    kc.check("gemm.dense", _gemv_dense, case)


@pytest.mark.parametrize("split", [2, 3, "auto"])
@pytest.mark.parametrize(
    "case",
    kc.params(
        "gemm.dense",
        lambda c: c.params["m"] == 1 and c.params["k"] <= 1024 and not c.name.startswith("f32"),
    )[:3],
)
def test_dense_one_row_gemv_split_k(case, split):
    """The same with K split over programs and the partial sums added by the last one."""
    from sglang_triton import gemv

    def run(x, weight, bias=None):
        launch = {"block_k": 32, "split_k": split}
        return gemv.gemv(x, weight.to(x.dtype), bias, launch=launch)

    kc.check("gemm.dense", run, case)


def test_gemv_small_launch_rule(monkeypatch):
    """gemv.SMALL_LAUNCH: the first tier a weight fits overrides GEMV_LAUNCH; larger weights
    (and a call's own launch, on top) keep theirs."""
    from sglang_triton import gemv

    tiers = [[1 << 20, {"block_n": 4, "split_k": "auto"}], [12 << 20, {"block_k": 512}]]
    monkeypatch.setattr(gemv, "SMALL_LAUNCH", tiers)
    assert gemv.launch_for(128, 2048) == {**gemv.GEMV_LAUNCH, "block_n": 4, "split_k": "auto"}
    assert gemv.launch_for(5120, 2048) == {**gemv.GEMV_LAUNCH, "block_k": 512}
    assert gemv.launch_for(4096, 4096) == gemv.GEMV_LAUNCH
    assert gemv.launch_for(128, 2048, {"block_n": 8})["block_n"] == 8


@pytest.mark.parametrize(
    "case",
    kc.params(
        "gemm.dense",
        lambda c: c.params["m"] == 1 and c.params["k"] <= 1024 and not c.name.startswith("f32"),
    )[:3],
)
def test_dense_one_row_gemv_small_launch(case, monkeypatch):
    """The GEMV under a small-weight tier (small tiles, split-K) against the reference."""
    from sglang_triton import gemv

    tier = {"block_n": 4, "block_k": 64, "num_warps": 2, "split_k": "auto"}
    monkeypatch.setattr(gemv, "SMALL_LAUNCH", [[1 << 24, tier]])
    kc.check("gemm.dense", _gemv_dense, case)
