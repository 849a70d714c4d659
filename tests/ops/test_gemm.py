"""gemm.dense and gemm.int8 references against element-wise sums and integer matmuls."""

import torch
from sglang.ops.gemm import dense, int8
from sglang.ops.spec import randn


def _loop_linear(x, w, b):
    m, k = x.shape
    out = torch.zeros(m, w.shape[0], dtype=torch.float64)
    for i in range(m):
        for j in range(w.shape[0]):
            out[i, j] = sum(float(x[i, t]) * float(w[j, t]) for t in range(k))
            out[i, j] += 0.0 if b is None else float(b[j])
    return out


def test_dense_matches_an_element_wise_sum():
    gen = torch.Generator().manual_seed(0)
    x, w, b = randn(gen, 3, 11, dtype=torch.float64), randn(gen, 5, 11, dtype=torch.float64), None
    assert torch.allclose(dense(x=x, weight=w), _loop_linear(x, w, b), rtol=1e-12, atol=1e-12)
    b = randn(gen, 5, dtype=torch.float64)
    assert torch.allclose(dense(x=x, weight=w, bias=b), _loop_linear(x, w, b), atol=1e-12)


def test_dense_rounds_once_to_the_input_dtype():
    gen = torch.Generator().manual_seed(1)
    x, w = randn(gen, 4, 300, dtype=torch.bfloat16), randn(gen, 6, 300, dtype=torch.bfloat16)
    exact = x.double() @ w.double().t()
    out = dense(x=x, weight=w)
    assert out.dtype == torch.bfloat16
    # float32 accumulation then one rounding: within one bf16 half-ulp (plus fp32 noise).
    assert bool(((out.double() - exact).abs() <= exact.abs() * 2**-8 + 1e-4).all())


def test_dense_empty_batch():
    x, w = torch.zeros(0, 8, dtype=torch.float16), torch.ones(3, 8, dtype=torch.float16)
    out = dense(x=x, weight=w)
    assert out.shape == (0, 3) and out.dtype == torch.float16


def test_int8_hand_example():
    # amax 127 -> x_scale 1; -63.5 rounds half to even -> -64.
    x = torch.tensor([[127.0, 0.0, -63.5]])
    w = torch.tensor([[1, 2, 3], [-1, 0, 1]], dtype=torch.int8)
    out = int8(x=x, weight=w, weight_scale=torch.tensor([0.5, 2.0]), bias=torch.tensor([1.0, 0.0]))
    assert out.tolist() == [[(127 - 192) * 0.5 + 1.0, (-127 - 64) * 2.0]]


def test_int8_accumulates_exactly():
    # K = 4096 products of magnitude up to 127^2: sums beyond 2^24 that float32 cannot hold.
    gen = torch.Generator().manual_seed(2)
    xq = torch.randint(-127, 128, (5, 4096), generator=gen)
    xq[:, 0] = 127  # amax 127 -> x_scale 1, so x is its own quantization
    w = torch.randint(-127, 128, (7, 4096), generator=gen, dtype=torch.int8)
    out = int8(x=xq.double(), weight=w, weight_scale=torch.ones(7, dtype=torch.float64))
    assert torch.equal(out, (xq @ w.long().t()).double())


def test_int8_equals_dequantized_product():
    gen = torch.Generator().manual_seed(3)
    x = randn(gen, 4, 64, dtype=torch.float64)
    w = torch.randint(-127, 128, (9, 64), generator=gen, dtype=torch.int8)
    ws = torch.rand(9, generator=gen, dtype=torch.float64)
    xs = x.abs().max(dim=1).values / 127
    xq = torch.clamp(torch.round(x / xs[:, None]), -127, 127)
    expect = (xq * xs[:, None]) @ (w.double() * ws[:, None]).t()
    assert torch.allclose(int8(x=x, weight=w, weight_scale=ws), expect, rtol=1e-12, atol=1e-12)


def test_xeon_weight_cache_reuses_and_invalidates():
    cache_module = __import__("pytest").importorskip("sglang_xeon.kernels.gemm")
    cache = cache_module.WeightCache(budget_bytes=1 << 20)
    builds = []

    def build(t):
        builds.append(1)
        return t * 2

    w = torch.ones(4, 4)
    first = cache.get((w,), ("x",), lambda: build(w))
    assert cache.get((w,), ("x",), lambda: build(w)) is first and len(builds) == 1
    assert cache.get((w,), ("y",), lambda: build(w)) is not first  # other extra key
    w.add_(1)  # in-place op bumps _version: the entry is stale
    assert float(cache.get((w,), ("x",), lambda: build(w))[0, 0]) == 4.0
    w.data.copy_(torch.full((4, 4), 5.0))  # no _version bump; the content sample sees it
    assert float(cache.get((w,), ("x",), lambda: build(w))[0, 0]) == 10.0
    del w, first
    assert not cache._entries  # freeing the source drops its entries
    big = torch.ones(1 << 20)
    cache.get((big,), (), lambda: build(big))
    assert not cache._entries  # larger than the budget: built, never stored
