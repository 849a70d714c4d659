"""gemm.int4 reference against a dense matmul with weights built element by element, from
words packed by loops written as AutoAWQ / AutoGPTQ write them (see test_quant_int4)."""

import torch
from sglang.ops.gemm import GLOBAL_TOLERANCES
from sglang.ops.gemm_int4 import int4
from sglang.ops.quant import int4 as q4
from test_quant_int4 import _awq_pack_loop, _gptq_pack_loop


def _problem(k=64, n=16, g=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (k, n), generator=gen)
    z = torch.randint(1, 16, (k // g, n), generator=gen)
    s = torch.rand(k // g, n, generator=gen, dtype=torch.float64) / 10
    x = torch.randn(3, k, generator=gen, dtype=torch.float64)
    return x, q, z, s


def _dense(q, z, s, g_idx):
    k, n = q.shape
    w = torch.empty(k, n, dtype=torch.float64)
    for kk in range(k):
        for nn in range(n):
            g = int(g_idx[kk])
            w[kk, nn] = (int(q[kk, nn]) - int(z[g, nn])) * float(s[g, nn])
    return w


def test_awq_matches_dense():
    x, q, z, s = _problem()
    out = int4(
        x=x,
        qweight=_awq_pack_loop(q),
        scales=s,
        qzeros=_awq_pack_loop(z),
        packing="awq",
        group_size=16,
    )
    w = _dense(q, z, s, torch.arange(64) // 16)
    assert torch.allclose(out, x @ w, rtol=1e-12, atol=1e-12)


def test_gptq_matches_dense_with_and_without_act_order():
    x, q, z, s = _problem(seed=1)
    qweight = _gptq_pack_loop(q)
    qzeros = q4.pack_nibbles(z - 1)  # zeros stored minus one, sequential along N
    plain = int4(x=x, qweight=qweight, scales=s, qzeros=qzeros, packing="gptq", group_size=16)
    assert torch.allclose(plain, x @ _dense(q, z, s, torch.arange(64) // 16), rtol=1e-12)
    g_idx = q4.act_order_g_idx(torch.randperm(64, generator=torch.Generator().manual_seed(2)), 16)
    out = int4(
        x=x, qweight=qweight, scales=s, qzeros=qzeros, packing="gptq", group_size=16, g_idx=g_idx
    )
    assert torch.allclose(out, x @ _dense(q, z, s, g_idx), rtol=1e-12, atol=1e-12)


def test_output_dtype_bias_and_empty_batch():
    x, q, z, s = _problem()
    qweight, qzeros = q4.pack_awq(q, z)
    xb = x.to(torch.bfloat16)
    out = int4(
        x=xb,
        qweight=qweight,
        scales=s.float(),
        qzeros=qzeros,
        packing="awq",
        group_size=16,
        bias=torch.ones(16, dtype=torch.bfloat16),
    )
    assert out.dtype == torch.bfloat16 and out.shape == (3, 16)
    empty = int4(
        x=xb[:0], qweight=qweight, scales=s.float(), qzeros=qzeros, packing="awq", group_size=16
    )
    assert empty.shape == (0, 16)


def test_zero_convention_is_visible_to_the_metric():
    # Reading GPTQ zeros without the +1 shifts every weight by one step: the GLOBAL metric
    # must see that, or the conformance cases could not tell the conventions apart.
    x, q, z, s = _problem(seed=3)
    qweight, qzeros = q4.pack_gptq(q, z)
    right = int4(x=x, qweight=qweight, scales=s, qzeros=qzeros, packing="gptq", group_size=16)
    wrong = x @ _dense(q, z - 1, s, torch.arange(64) // 16)
    nmse = float(((wrong - right) ** 2).sum() / (right**2).sum())
    assert nmse > 100 * GLOBAL_TOLERANCES[torch.bfloat16].rel_rms ** 2  # NMSE = rel_rms^2


def test_float_zero_points_match_dense():
    # Fractional zeros (the int4:float_zeros scheme) with both packings of qweight.
    x, q, _, s = _problem(seed=4)
    z = torch.rand(4, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 15
    dense = torch.empty(64, 16, dtype=torch.float64)
    for kk in range(64):
        for nn in range(16):
            dense[kk, nn] = (int(q[kk, nn]) - float(z[kk // 16, nn])) * float(s[kk // 16, nn])
    for packing, qweight in (("awq", _awq_pack_loop(q)), ("gptq", _gptq_pack_loop(q))):
        out = int4(x=x, qweight=qweight, scales=s, qzeros=z, packing=packing, group_size=16)
        assert torch.allclose(out, x @ dense, rtol=1e-12, atol=1e-12), packing
