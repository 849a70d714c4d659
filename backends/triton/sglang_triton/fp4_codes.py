"""FP4 and FP8 codes decoded with integer arithmetic and a bitcast to float32 (no fp8 support
needed from the GPU), for the kernels that read NVFP4 / MXFP4 weights (gemm_fp4, the MoE
experts):

  e2m1  sign s, exponent e (2 bits), mantissa m (1 bit): e = 0 -> m / 2, else 2^(e-1) (1 + m/2)
  e4m3  sign, exponent e (4 bits, bias 7), mantissa m (3 bits): e = 0 -> m 2^-9, else the
        float32 with exponent field e + 120 and mantissa m << 20
  e8m0  e -> 2^(e - 127): the float32 exponent field e (e = 0: 2^-127, a subnormal; 255: NaN)

e2m1_tiny is the decode GEMVs' cheap form of e2m1: a weight in five integer operations where
the exact decode takes about fourteen (the MoE decode loop on sm_90: 407 -> 277 instructions a
warp per step at the same launch, benchmarks/ in docs/benchmarks.md).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def e2m1(code):
    mag = code & 7
    e = mag >> 1
    m = mag & 1
    normal = (((e + 126) << 23) | (m << 22)).to(tl.float32, bitcast=True)
    v = tl.where(e == 0, m.to(tl.float32) * 0.5, normal)
    return tl.where((code & 8) != 0, -v, v)


@triton.jit
def e2m1_tiny(code):
    """e2m1(code) * 2^-126, for codes in bits 0-3: the magnitude bits put where a float32's
    exponent and mantissa end (bits 24-23 and 22: 2^(e - 127) (1 + m/2), or for e = 0 the
    subnormal m 2^-127), the sign to bit 31. The caller folds 2^126 into its other factors;
    PTX keeps float32 subnormals in mul and fma without .ftz (Triton emits none)."""
    return (((code & 7) << 22) | ((code & 8) << 28)).to(tl.float32, bitcast=True)


@triton.jit
def e4m3(byte):
    e = (byte >> 3) & 0xF
    m = byte & 7
    normal = (((e + 120) << 23) | (m << 20)).to(tl.float32, bitcast=True)
    v = tl.where(e == 0, m.to(tl.float32) * 0.001953125, normal)
    return tl.where((byte & 0x80) != 0, -v, v)


@triton.jit
def e8m0(byte):
    bits = tl.where(byte == 0, 0x400000, tl.where(byte == 255, 0x7FC00000, byte << 23))
    return bits.to(tl.float32, bitcast=True)
