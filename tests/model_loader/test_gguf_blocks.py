"""GGUF block decoding (sglang.model_loader.gguf_blocks) against gguf-py's `dequantize`, the
independent implementation of ggml's layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from sglang.model_loader.gguf_blocks import DECODERS, decode_blocks  # noqa: E402
from tiny_gguf import random_blocks  # noqa: E402

CODE_RANGES = {
    "Q4_0": (0, 15),
    "Q4_1": (0, 15),
    "Q4_K": (0, 15),
    "Q5_0": (-16, 15),
    "Q5_1": (0, 31),
    "Q5_K": (0, 31),
    "Q6_K": (-32, 31),
    "Q8_0": (-127, 127),
}


@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_codes_scales_zeros_give_gguf_py_values(kind):
    from gguf import GGMLQuantizationType, dequantize

    rows, cols = 24, 512
    data = random_blocks(kind, rows, cols, np.random.default_rng(0))
    quant = decode_blocks(data, kind, (rows, cols))
    expected = torch.from_numpy(dequantize(data, GGMLQuantizationType[kind]).astype(np.float32))
    got = quant.dequantize()
    # (q - z) * s against s * q + m: float32 rounding only.
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-6 * float(expected.abs().max()))
    assert quant.codes.dtype == torch.int8 and quant.codes.shape == (rows, cols)
    low, high = CODE_RANGES[kind]
    assert low <= int(quant.codes.min()) and int(quant.codes.max()) <= high
    assert quant.scales.shape == (rows, cols // quant.group_size)
    assert quant.bits == (4 if kind in ("Q4_0", "Q4_1", "Q4_K") else 8)
    order = torch.randperm(rows)
    assert torch.equal(quant.rows(order).dequantize(), got[order])


@pytest.mark.parametrize("kind", ["Q4_1", "Q5_1"])
def test_a_group_of_one_value_stays_exact(kind):
    """d = 0: every weight of the block is m, which z = -m / d cannot say."""
    from gguf import GGMLQuantizationType, dequantize

    data = random_blocks(kind, 2, 64, np.random.default_rng(1))
    blocks = data.reshape(-1, data.shape[1] // 2)
    blocks[0, 0:2] = np.zeros(1, np.float16).view(np.uint8)  # d of the first block
    quant = decode_blocks(data, kind, (2, 64))
    expected = dequantize(data, GGMLQuantizationType[kind])
    assert np.allclose(quant.dequantize().numpy(), expected, rtol=1e-6, atol=1e-7)
    assert np.all(expected[0, :32] == expected[0, 0])
