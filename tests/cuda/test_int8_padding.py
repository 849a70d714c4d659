"""gemm.int8's padding to torch._int_mm's shape rules is exact (checked with the CPU _int_mm)."""

import pytest
import torch

gemm = pytest.importorskip("sglang_cuda.kernels.gemm")


@pytest.mark.parametrize("m,k,n", [(1, 128, 96), (7, 257, 129), (33, 1000, 511), (32, 64, 48)])
def test_padded_int_mm_equals_integer_matmul(m, k, n):
    g = torch.Generator().manual_seed(m * k + n)
    x = torch.randint(-127, 128, (m, k), dtype=torch.int8, generator=g)
    w = torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=g)
    got = gemm.padded_int_mm(x, w)
    assert got.shape == (m, n) and got.dtype == torch.int32
    assert torch.equal(got.long(), x.long() @ w.long().t())
