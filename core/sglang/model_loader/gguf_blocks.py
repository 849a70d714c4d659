"""GGUF quantized blocks -> integer codes with per-group scales and zero points, exactly.

Every block type served quantized here is an affine grid per group of G weights:
w = (q - z) * s, q small integers. `decode_blocks` reads a tensor's raw blocks (rows of bytes,
as the file stores them) into that form without rounding anything: codes as int8, s and z as
float32 (a block's float16 scale, or the product of one with a 6-bit sub-block scale, is
exact in float32). Layouts follow ggml-quants.c, as gguf-py's `gguf.quants` implements them;
`gguf.quants.dequantize` is the independent check (tests/model_loader/test_gguf_blocks.py).

| type | G  | codes         | s              | z                         | bits |
|------|----|---------------|----------------|---------------------------|------|
| Q4_0 | 32 | 0..15         | d              | 8                         | 4    |
| Q4_1 | 32 | 0..15         | d              | -m / d                    | 4    |
| Q4_K | 32 | 0..15         | d * sc         | dmin * mn / (d * sc)      | 4    |
| Q5_0 | 32 | -16..15       | d              | none                      | 8    |
| Q5_1 | 32 | 0..31         | d              | -m / d                    | 8    |
| Q5_K | 32 | 0..31         | d * sc         | dmin * mn / (d * sc)      | 8    |
| Q6_K | 16 | -32..31       | d * sc         | none                      | 8    |
| Q8_0 | 32 | -128..127     | d              | none                      | 8    |

"bits" is the serving scheme: 4 (gemm.int4, float zero points) or 8 (gemm.w8a16). A group
of a type with a minimum whose scale is 0 holds one value (m, or -dmin * mn): its codes become
0, s = 1 and z = minus that value, so it stays exact.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

QK_K = 256


class BlockQuant(NamedTuple):
    """One tensor's weights as w[n, k] = (codes[n, k] - zeros[n, k // G]) * scales[n, k // G]."""

    codes: torch.Tensor  # int8 [N, K]
    scales: torch.Tensor  # float32 [N, K/G]
    zeros: torch.Tensor | None  # float32 [N, K/G], None where z = 0
    group_size: int
    bits: int  # 4: codes 0..15 (gemm.int4); 8: int8 codes (gemm.w8a16)
    ggml_type: str

    def rows(self, index: torch.Tensor) -> BlockQuant:
        """The same weights with their rows reordered (index: int64 [N])."""
        z = None if self.zeros is None else self.zeros[index]
        return self._replace(codes=self.codes[index], scales=self.scales[index], zeros=z)

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        n, k = self.codes.shape
        q = self.codes.to(torch.float32).view(n, k // self.group_size, self.group_size)
        if self.zeros is not None:
            q = q - self.zeros.unsqueeze(-1)
        return (q * self.scales.unsqueeze(-1)).view(n, k).to(dtype)


class CodesTensor(torch.Tensor):
    """A float32 [N, K] tensor that stands for a BlockQuant's values without computing them.

    The GGUF loader yields one for each tensor whose codes it keeps (gguf_weights). Any op that
    reads it (a copy into a parameter, a cast, a slice) gets `quant.dequantize()`, the values
    the float path yields, so every loader works unchanged; `Linear` instead keeps it aside
    (`Linear._copy_rows`) and computes the values only if the layer ends up dense
    (`Linear.prepare`): a layer served on the codes skips the float pass altogether.
    """

    quant: BlockQuant

    @staticmethod
    def __new__(cls, quant: BlockQuant) -> CodesTensor:
        shape, device = tuple(quant.codes.shape), quant.codes.device
        self = torch.Tensor._make_wrapper_subclass(cls, shape, dtype=torch.float32, device=device)
        self.quant = quant
        return self

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        from torch.utils._pytree import tree_map

        def values(t):
            return t.quant.dequantize() if isinstance(t, CodesTensor) else t

        return func(*tree_map(values, args), **tree_map(values, kwargs or {}))

    def __repr__(self) -> str:
        return f"CodesTensor({self.quant.ggml_type}, shape={tuple(self.shape)})"


def _f16(b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(b).view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray, half: int) -> np.ndarray:
    """Bytes [..., half] -> codes [..., 2 * half]: low nibbles first, then high ones."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _q4_0(b):
    return _nibbles(b[:, 2:], 16), _f16(b[:, :2]), np.full((len(b), 1), 8.0, np.float32)


def _q4_1(b):
    d, m = _f16(b[:, :2]), _f16(b[:, 2:4])
    return _nibbles(b[:, 4:], 16), d, _zero_of_min(d, m)


def _q5_high(qh: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(qh).view(np.uint32).reshape(-1, 1) >> np.arange(32, dtype=np.uint32)
    return ((bits & 1) << 4).astype(np.uint8)


def _q5_0(b):
    q = _nibbles(b[:, 6:], 16) | _q5_high(b[:, 2:6])
    return q.astype(np.int16) - 16, _f16(b[:, :2]), None


def _q5_1(b):
    d, m = _f16(b[:, :2]), _f16(b[:, 2:4])
    return _nibbles(b[:, 8:], 16) | _q5_high(b[:, 4:8]), d, _zero_of_min(d, m)


def _k_scales(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K / Q5_K: (s = d * sc [B, 8], dmin * mn [B, 8]) from the 12 packed scale bytes."""
    from gguf.quants import Q4_K

    sc, mn = Q4_K.get_scale_min(np.ascontiguousarray(b[:, 4:16]))
    return _f16(b[:, :2]) * sc.astype(np.float32), _f16(b[:, 2:4]) * mn.astype(np.float32)


def _q4_k(b):
    s, dm = _k_scales(b)
    qs = b[:, 16:].reshape(-1, 4, 32)  # 4 x 32 bytes: sub-blocks 2i (low), 2i + 1 (high)
    q = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(-1, QK_K)
    return q, s, _zero_of_min(s, -dm)


def _q5_k(b):
    s, dm = _k_scales(b)
    qh = b[:, 16:48].reshape(-1, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    qs = b[:, 48:].reshape(-1, 4, 32)
    low = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(-1, 8, 32)
    q = (low | ((qh & 1) << 4)).reshape(-1, QK_K)
    return q, s, _zero_of_min(s, -dm)


def _q6_k(b):
    ql, qh = b[:, :128].reshape(-1, 2, 1, 64), b[:, 128:192].reshape(-1, 2, 1, 32)
    low = (ql >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)) & 0x0F
    high = (qh >> np.array([0, 2, 4, 6], np.uint8).reshape(1, 1, 4, 1)) & 0x03
    q = low.reshape(-1, 2, 4, 32) | (high.reshape(-1, 2, 4, 32) << 4)
    sc = np.ascontiguousarray(b[:, 192:208]).view(np.int8).astype(np.float32)
    return q.reshape(-1, QK_K).astype(np.int16) - 32, _f16(b[:, 208:210]) * sc, None


def _q8_0(b):
    return np.ascontiguousarray(b[:, 2:]).view(np.int8), _f16(b[:, :2]), None


def _zero_of_min(s: np.ndarray, m: np.ndarray) -> np.ndarray:
    """z with (q - z) s = s q + m: -m / s (s = 0 is handled by `decode_blocks`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s != 0, -m / np.where(s != 0, s, 1), m).astype(np.float32)


# type name -> (decoder, weights per block, group size, serving bits)
DECODERS = {
    "Q4_0": (_q4_0, 32, 32, 4),
    "Q4_1": (_q4_1, 32, 32, 4),
    "Q4_K": (_q4_k, QK_K, 32, 4),
    "Q5_0": (_q5_0, 32, 32, 8),
    "Q5_1": (_q5_1, 32, 32, 8),
    "Q5_K": (_q5_k, QK_K, 32, 8),
    "Q6_K": (_q6_k, QK_K, 16, 8),
    "Q8_0": (_q8_0, 32, 32, 8),
}


WITH_MIN = frozenset({"Q4_1", "Q5_1", "Q4_K", "Q5_K"})  # w = s q + m: a group of s = 0 is m


def decode_blocks(data: np.ndarray, ggml_type: str, shape: tuple[int, int]) -> BlockQuant:
    """data: uint8 [N, bytes per row] (a 2-D tensor's raw blocks); shape: (N, K) in weights."""
    decoder, block, group, bits = DECODERS[ggml_type]
    n, k = shape
    blocks = np.ascontiguousarray(data).reshape(n * k // block, -1)
    q, s, z = decoder(blocks)
    q = q.reshape(n, k // group, group)
    per_block = (len(blocks), block // group)
    s = np.broadcast_to(s.reshape(len(blocks), -1), per_block).reshape(n, -1)
    if z is not None:
        z = np.broadcast_to(z.reshape(len(blocks), -1), per_block).reshape(n, -1)
        flat = s == 0  # one value per group: (0 - z) * 1 with z = -m, the group's value
        if ggml_type in WITH_MIN and flat.any():
            q = np.where(flat[..., None], 0, q)
            s = np.where(flat, 1, s)
            z = np.where(flat, -z, z)  # z held m there (see _zero_of_min)
    codes = torch.from_numpy(q.reshape(n, k).astype(np.int8))
    zeros = None if z is None else torch.from_numpy(np.array(z, dtype=np.float32))
    scales = torch.from_numpy(np.array(s, dtype=np.float32))
    return BlockQuant(codes, scales, zeros, group, bits, ggml_type)
