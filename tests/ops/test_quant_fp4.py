"""sglang.ops.quant.fp4 against the e2m1 code table, hand-packed bytes, e8m0 exponents and
block-by-block loops."""

import math

import torch
from sglang.ops.quant import fp4 as q4

TABLE = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def test_e2m1_code_table():
    values = q4.e2m1_decode(torch.arange(16))
    assert values.tolist() == TABLE
    assert math.copysign(1.0, float(values[8])) == -1.0  # code 8 is negative zero
    codes = [c for c in range(16) if c != 8]
    assert q4.e2m1_encode(torch.tensor([TABLE[c] for c in codes])).tolist() == codes


def test_e2m1_rounds_ties_to_even_and_saturates():
    x = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 0.3, 2.6, 7.0, -100.0, -0.74])
    got = q4.e2m1_decode(q4.e2m1_encode(x)).tolist()
    assert got == [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 0.5, 3.0, 6.0, -6.0, -0.5]


def test_packing_puts_even_k_in_the_low_nibble():
    codes = torch.tensor([[1, 2, 15, 8]])
    packed = q4.pack_fp4(codes)
    assert packed.dtype == torch.uint8 and packed.tolist() == [[0x21, 0x8F]]
    assert q4.unpack_fp4(packed).tolist() == codes.tolist()


def test_e8m0_exponents():
    got = q4.e8m0_decode(torch.tensor([127, 128, 120, 0, 254, 255], dtype=torch.uint8))
    assert got[:5].tolist() == [1.0, 2.0, 2.0**-7, 2.0**-127, 2.0**127]
    assert math.isnan(float(got[5]))


def test_mxfp4_shared_exponent():
    w = torch.zeros(1, 32)
    w[0, 0], w[0, 1], w[0, 2] = 3.0, -1.0, 0.2
    packed, scale = q4.quantize_mxfp4(w)
    # floor(log2(3)) - 2 = -1 -> e = 126, scale 0.5: 3 -> 6, -1 -> -2, 0.2 -> 0.4 -> 0.5.
    assert scale.tolist() == [[126]]
    assert q4.dequantize_mxfp4(packed, scale)[0, :4].tolist() == [3.0, -1.0, 0.25, 0.0]


def test_nvfp4_recipe_and_block_loop():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 48, generator=gen)
    packed, scale, glob = q4.quantize_nvfp4(w)
    assert packed.shape == (3, 24) and scale.shape == (3, 3) and scale.dtype == torch.float8_e4m3fn
    assert math.isclose(float(glob), float(w.abs().max()) / (6 * 448), rel_tol=1e-6)
    deq = q4.dequantize_nvfp4(packed, scale, glob)
    codes = q4.unpack_fp4(packed)
    for n in range(3):
        for k in range(48):
            expect = TABLE[int(codes[n, k])] * float(scale[n, k // 16].float()) * float(glob)
            assert math.isclose(float(deq[n, k]), expect, rel_tol=1e-6, abs_tol=1e-12)
    # Each block's largest magnitude maps near 6 (up to the e4m3 rounding of its scale).
    block_err = (deq - w).abs().view(3, 3, 16).amax(-1)
    block_amax = w.abs().view(3, 3, 16).amax(-1)
    assert bool((block_err <= block_amax / 6 * 1.1).all())
