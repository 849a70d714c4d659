"""How far a correct kernel's output may sit from the float64 oracle, derived from precision.

A conforming kernel differs from the oracle (the reference run in float64 on the same inputs)
only by
  - roundings to the op's dtype along the way (intermediates a kernel may keep in the dtype,
    and the output): each is a relative error of at most u, the dtype's unit roundoff, and
    about 0.43 u in root mean square over many elements;
  - the order of its float32 accumulations: a sum of K terms carries a relative error that
    grows like sqrt(K) * u(float32) for random-sign data.

So the normalised error of a whole output, rel_rms = ||out - ref||_2 / ||ref||_2 (NMSE is its
square), is bounded by

    rel_rms_bound(dtype, roundings, accumulation) = sqrt(roundings) * u(dtype)
                                                    + sqrt(accumulation) * u(float32)

which is ~2.3x what a correct kernel measures. `roundings` is capped at MAX_ROUNDINGS so that a
1% scale error (rel_rms 0.01) fails in every dtype: for bfloat16 the bound is at most
2 * 2^-8 = 0.0078. Each spec documents its roundings and accumulation length beside its table.

For ops whose metric is a global error (low-bit GEMMs), element-wise closeness does not apply
(quantized activations may flip a quantization step), so one wrong element is caught by `peak`
instead: max |out - ref| over the RMS of ref, bounded by PEAK_FACTOR times the rel_rms bound.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import torch

from sglang.ops.spec import Tolerance

UNIT_ROUNDOFF = {
    torch.float64: 2.0**-53,
    torch.float32: 2.0**-24,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
}
MAX_ROUNDINGS = 4
# A correct output's largest element error sits a few RMS above its mean (Gaussian tails over
# up to ~1e6 elements: < 6 sigma); a wrong element of one RMS of the output is far above.
PEAK_FACTOR = 8.0
# Where activations are quantized (fp8, int8 GEMMs), the kernel and the oracle may round a few
# activations to neighbouring codes (their scales differ in the last bits): one such element's
# error is a quantization step of the activation times a weight, up to ~1% of the output's RMS
# at K = 64 (measured 0.2% in float32).
PEAK_FLOOR = 0.02


def unit_roundoff(dtype: torch.dtype) -> float:
    try:
        return UNIT_ROUNDOFF[dtype]
    except KeyError:
        raise KeyError(f"no unit roundoff for {dtype}") from None


def rel_rms_bound(dtype: torch.dtype, roundings: int = 1, accumulation: int = 1) -> float:
    """The largest relative RMS error a correct kernel of an op may show in `dtype`: at most
    `roundings` roundings to the dtype and float32 sums of at most `accumulation` terms."""
    if not 1 <= roundings <= MAX_ROUNDINGS:
        raise ValueError(f"roundings must be in 1..{MAX_ROUNDINGS}, got {roundings}")
    accumulator = torch.float64 if dtype == torch.float64 else torch.float32
    bound = math.sqrt(roundings) * unit_roundoff(dtype)
    return bound + math.sqrt(max(accumulation, 1)) * unit_roundoff(accumulator)


def with_error_bounds(
    table: Mapping[torch.dtype, Tolerance],
    roundings: int,
    accumulation: int = 1,
    floor: float = 0.0,
    peak: bool = False,
    output_dtype: torch.dtype | None = None,
) -> dict[torch.dtype, Tolerance]:
    """`table` with each dtype's rel_rms bound (and, for global metrics, its peak bound) set
    from `roundings` and `accumulation`. `floor` is a documented error that does not scale with
    the dtype (activation quantization steps); `output_dtype` is for ops whose outputs keep one
    dtype whatever the inputs' (router weights in float32)."""
    out = {}
    for dtype, tol in table.items():
        precision = output_dtype or dtype
        rel = max(floor, rel_rms_bound(precision, roundings, accumulation))
        out[dtype] = dataclasses.replace(tol, rel_rms=rel, peak=_peak(rel, floor) if peak else 0.0)
    return out


def _peak(rel_rms: float, floor: float) -> float:
    return max(PEAK_FLOOR if floor else 0.0, PEAK_FACTOR * rel_rms)
