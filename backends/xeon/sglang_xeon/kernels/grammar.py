"""grammar.apply_bitmask on the CPU.

The int32 words are read as little-endian bytes, so byte i of word w holds tokens
32w + 8i .. 32w + 8i + 7 in bit order, and one row lookup in a [256, 8] table unpacks 8 tokens.
The table holds additive values, -0.0 for allowed (x + -0.0 == x bit for bit, signed zeros
included) and -inf for banned, so the mask is applied by one vectorised add: torch's bool-mask
fills run several times slower on this CPU. An add would turn a banned +inf into NaN and keep a
banned NaN, so logits holding +inf or NaN (their max says so: max propagates NaN) take the
masked-fill path instead; -inf logits are fine either way.
"""

from __future__ import annotations

import sys

import torch

_BANNED = ((torch.arange(256).unsqueeze(1) >> torch.arange(8)) & 1) == 0  # [256, 8]
_ADDEND = torch.full((256, 8), -0.0).masked_fill_(_BANNED, float("-inf"))
_ADDENDS = {dt: _ADDEND.to(dt) for dt in (torch.float32, torch.bfloat16, torch.float16)}


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    batch, vocab = logits.shape
    if batch == 0 or vocab == 0:
        return
    if sys.byteorder != "little":
        bits = torch.arange(32, dtype=torch.int32)
        banned = (((bitmask.unsqueeze(-1) >> bits) & 1) == 0).flatten(1)[:, :vocab]
        logits.masked_fill_(banned, float("-inf"))
        return
    as_bytes = bitmask.contiguous().view(torch.uint8).reshape(-1).long()  # [B * 4W]
    addend = _ADDENDS.get(logits.dtype)
    if addend is not None and float(logits.max()) < float("inf"):
        logits.add_(addend.index_select(0, as_bytes).view(batch, -1)[:, :vocab])
    else:
        banned = _BANNED.index_select(0, as_bytes).view(batch, -1)[:, :vocab]
        logits.masked_fill_(banned, float("-inf"))


def register(registry) -> None:
    registry.register("grammar.apply_bitmask", apply_bitmask, name="xeon.apply_bitmask")
