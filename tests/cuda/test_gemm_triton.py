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


def _rows_dense(launch):
    """gemm.dense through the tensor-core rows kernel (gemv.rows), whatever ROWS_LAUNCH says."""
    from sglang_triton import gemv

    def run(x, weight, bias=None):
        return gemv.rows(x, weight.to(x.dtype), bias, launch=launch)

    return run


ROWS_CASES = kc.params(
    "gemm.dense",
    lambda c: 1 <= c.params["m"] <= 16 and c.params["k"] <= 1024 and not c.name.startswith("f32"),
)


@pytest.mark.parametrize("split", [1, 3])
@pytest.mark.parametrize("case", ROWS_CASES)
def test_dense_rows_mma(case, split):
    """1-16 rows on the tensor-core kernel (ragged K and N, bias, split-K finished in-kernel)
    against the reference: the spec's M 1 and 7 cases, small tiles so K spans several steps."""
    launch = {"block_n": 64, "block_k": 32, "split_k": split}
    kc.check("gemm.dense", _rows_dense(launch), case)


@pytest.mark.parametrize("m", [2, 16])
def test_dense_rows_mma_many_rows(m):
    """Every one of 16 columns stored (and none past M): a 16-row and a 2-row x against a
    float64 product, with a strided x (a view of a wider buffer)."""
    import torch
    from sglang_triton import gemv

    gen = torch.Generator().manual_seed(m)
    wide = torch.randn(m, 200, generator=gen).to(torch.bfloat16)
    x = wide[:, :160]
    w = (torch.randn(80, 160, generator=gen) / 13).to(torch.bfloat16)
    y = gemv.rows(x, w, launch={"block_k": 32, "split_k": 2})
    ref = x.double() @ w.double().t()
    assert y.shape == (m, 80)
    torch.testing.assert_close(y.double(), ref, atol=2e-2, rtol=1e-2)


def test_dense_rows_switch(monkeypatch):
    """ROWS_LAUNCH decides which calls take the kernel: off by default; on, rows in
    [min_rows, max_rows] (never more than 16)."""
    import torch
    from sglang_triton import gemv

    w = torch.empty(8, 16, dtype=torch.bfloat16)
    cuda_x = torch.empty(4, 16, dtype=torch.bfloat16, device="meta")
    assert not gemv.rows_apply(cuda_x, w)  # meta is no GPU, and the switch is off anyway
    monkeypatch.setattr(gemv, "ROWS_LAUNCH", {**gemv.ROWS_LAUNCH, "enabled": True})
    monkeypatch.setattr(torch.Tensor, "device", property(lambda t: torch.device("cuda")))
    assert gemv.rows_apply(cuda_x, w)
    assert not gemv.rows_apply(cuda_x[:1], w)  # min_rows 2: one row keeps the GEMV
    assert gemv.rows_apply(cuda_x[:1], w, {"min_rows": 1})
    big = torch.empty(17, 16, dtype=torch.bfloat16, device="meta")
    assert not gemv.rows_apply(big, w, {"max_rows": 64})
