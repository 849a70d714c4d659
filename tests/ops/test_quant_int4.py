"""sglang.ops.quant.int4 against hand-packed words and loop packers written the way AutoAWQ
(WQLinear_GEMM.from_linear) and AutoGPTQ (QuantLinear.pack) write them."""

import torch
from sglang.ops.quant import int4 as q4


def _as_uint32(word: int) -> int:
    return word & 0xFFFFFFFF


def _awq_pack_loop(intweight: torch.Tensor) -> torch.Tensor:
    """AutoAWQ: for each word column, nibble i takes column col * 8 + order_map[i]."""
    order_map = [0, 2, 4, 6, 1, 3, 5, 7]
    rows, cols = intweight.shape
    out = [[0] * (cols // 8) for _ in range(rows)]
    for r in range(rows):
        for col in range(cols // 8):
            word = 0
            for i in range(8):
                word |= int(intweight[r, col * 8 + order_map[i]]) << (i * 4)
            out[r][col] = word - 2**32 if word >= 2**31 else word
    return torch.tensor(out, dtype=torch.int32)


def _gptq_pack_loop(intweight: torch.Tensor) -> torch.Tensor:
    """AutoGPTQ: qweight[row] |= intweight[j] << (4 * (j - i)) over rows i..i+7 of [K, N]."""
    k, n = intweight.shape
    out = torch.zeros(k // 8, n, dtype=torch.int64)
    for row in range(k // 8):
        for j in range(8):
            out[row] |= intweight[8 * row + j].to(torch.int64) << (4 * j)
    return torch.where(out >= 2**31, out - 2**32, out).to(torch.int32)


def test_awq_word_with_known_nibbles():
    q = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    packed = q4.pack_nibbles(q, q4.AWQ_ORDER)
    # Nibbles low to high hold columns 0, 2, 4, 6, 1, 3, 5, 7 -> values 1, 3, 5, 7, 2, 4, 6, 8.
    assert _as_uint32(int(packed)) == 0x86427531
    assert q4.unpack_nibbles(packed, q4.AWQ_ORDER).tolist() == q.tolist()


def test_gptq_words_with_known_nibbles():
    q = torch.arange(1, 9).reshape(8, 1)  # K = 8 rows, one column: packed along K
    zeros = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])  # stored as zeros - 1 = 0..7
    qweight, qzeros = q4.pack_gptq(q, zeros)
    assert qweight.shape == (1, 1) and _as_uint32(int(qweight)) == 0x87654321
    assert _as_uint32(int(qzeros)) == 0x76543210
    q_back, z_back = q4.unpack_gptq(qweight, qzeros)
    assert q_back.tolist() == q.tolist() and z_back.tolist() == zeros.tolist()


def test_packers_match_the_loop_packers():
    gen = torch.Generator().manual_seed(0)
    q = torch.randint(0, 16, (16, 24), generator=gen)
    assert torch.equal(q4.pack_nibbles(q, q4.AWQ_ORDER), _awq_pack_loop(q))
    zeros = torch.randint(1, 17, (2, 24), generator=gen)
    qweight, qzeros = q4.pack_gptq(q, zeros)
    assert torch.equal(qweight, _gptq_pack_loop(q))
    assert torch.equal(qzeros, q4.pack_nibbles(zeros - 1))


def test_round_trips():
    gen = torch.Generator().manual_seed(1)
    q = torch.randint(0, 16, (64, 40), generator=gen, dtype=torch.int32)
    z = torch.randint(0, 16, (4, 40), generator=gen, dtype=torch.int32)
    assert all(torch.equal(a, b) for a, b in zip(q4.unpack_awq(*q4.pack_awq(q, z)), (q, z)))
    z1 = z.clamp(min=1)
    assert all(torch.equal(a, b) for a, b in zip(q4.unpack_gptq(*q4.pack_gptq(q, z1)), (q, z1)))


def test_act_order_g_idx():
    perm = torch.tensor([5, 0, 7, 2, 1, 6, 3, 4])
    g_idx = q4.act_order_g_idx(perm, 4)
    # Rows quantized first (5, 0, 7, 2) form group 0, the rest group 1.
    assert g_idx.tolist() == [0, 1, 0, 1, 1, 0, 1, 0]


def test_quantize_then_dequantize_is_within_half_a_step():
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(24, 64, generator=gen)  # [N, K]
    for g_idx in (None, q4.act_order_g_idx(torch.randperm(64, generator=gen), 16)):
        quant = q4.quantize_int4(w, 16, g_idx)
        assert quant.q.shape == (64, 24) and quant.scales.shape == (4, 24)
        assert int(quant.q.min()) >= 0 and int(quant.q.max()) <= 15
        deq = q4.dequantize_int4(quant.q, quant.scales, quant.zeros, quant.g_idx)
        step = quant.scales.index_select(0, quant.g_idx.long())
        assert bool(((deq - w.t()).abs() <= step / 2 + 1e-6).all())


def test_dequantize_matches_the_elementwise_formula():
    gen = torch.Generator().manual_seed(3)
    q = torch.randint(0, 16, (6, 5), generator=gen)
    z = torch.randint(0, 16, (3, 5), generator=gen)
    s = torch.rand(3, 5, generator=gen)
    g_idx = torch.tensor([2, 0, 1, 1, 0, 2], dtype=torch.int32)
    deq = q4.dequantize_int4(q, s, z, g_idx)
    for k in range(6):
        for n in range(5):
            g = int(g_idx[k])
            assert abs(float(deq[k, n]) - (int(q[k, n]) - int(z[g, n])) * float(s[g, n])) < 1e-6


def test_float_zeros_recover_a_q4_1_grid():
    # GGUF Q4_1 stores w = d * q + m per 32 weights, m fractional in units of d (and all
    # weights of a group may share a sign): float zero points recover q, d and z = -m / d.
    gen = torch.Generator().manual_seed(4)
    n, k = 16, 64
    q = torch.randint(0, 16, (n, k), generator=gen)
    q[:, 0::32], q[:, 1::32] = 0, 15  # each group uses both extremes, as Q4_1 makes it
    d = torch.rand(n, k // 32, generator=gen, dtype=torch.float64) / 10 + 0.01
    m = torch.randn(n, k // 32, generator=gen, dtype=torch.float64) * d * 6
    w = (q.double().view(n, -1, 32) * d[..., None] + m[..., None]).view(n, k)
    quant = q4.quantize_int4(w, 32, scale_dtype=torch.float64, float_zeros=True)
    assert quant.zeros.dtype == torch.float64 and torch.equal(quant.q, q.t().to(torch.int32))
    assert torch.allclose(quant.scales, d.t(), rtol=1e-12)
    assert torch.allclose(quant.zeros, (-m / d).t(), rtol=1e-12, atol=1e-12)
    deq = q4.dequantize_int4(quant.q, quant.scales, quant.zeros, quant.g_idx)
    assert torch.allclose(deq, w.t(), rtol=1e-12, atol=1e-12)
    integer = q4.quantize_int4(w, 32, scale_dtype=torch.float64)  # zero rounded: levels move
    deq_int = q4.dequantize_int4(integer.q, integer.scales, integer.zeros, integer.g_idx)
    assert float((deq_int - w.t()).abs().max()) > 1e-3


def test_pack_qweight_round_trips():
    q = torch.randint(0, 16, (32, 24), generator=torch.Generator().manual_seed(6))
    assert torch.equal(q4.pack_qweight(q, "awq"), _awq_pack_loop(q))
    assert torch.equal(q4.pack_qweight(q, "gptq"), _gptq_pack_loop(q))
    for packing in ("awq", "gptq"):
        assert torch.equal(q4.unpack_qweight(q4.pack_qweight(q, packing), packing), q)
