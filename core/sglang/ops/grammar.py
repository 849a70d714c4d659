"""grammar.apply_bitmask: mask the logits of tokens a grammar forbids (structured outputs)."""

from __future__ import annotations

import torch

from sglang.ops.spec import EXACT, Case, OpSpec, Tolerance, case_name
from sglang.ops.specs import register_spec


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    """logits: [B, V] float, modified in place; bitmask: [B, ceil(V / 32)] int32.

    Token j of row b is allowed when bit (j % 32) of bitmask[b, j // 32] is 1, bits counted
    from the least significant (xgrammar's packing, as in its
    apply_token_bitmask_inplace_torch: (word >> bit) & 1; bit 31 is the int32 sign bit).
    Disallowed logits become -inf; allowed ones are left untouched. Bits past V are ignored."""
    vocab = logits.shape[-1]
    bits = torch.arange(32, dtype=torch.int32, device=bitmask.device)
    allowed = (bitmask.unsqueeze(-1) >> bits) & 1  # [B, W, 32]
    allowed = allowed.flatten(1)[:, :vocab].bool()
    logits.masked_fill_(~allowed, float("-inf"))


# (batch, vocab, pattern)
SHAPES = (
    (0, 100, "random"),
    (1, 32, "random"),
    (3, 100, "all"),
    (4, 1000, "single"),
    (5, 32000, "random"),
    (2, 32001, "none"),
    (16, 128256, "sparse"),
    (7, 151937, "random"),
)
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _cases() -> list[Case]:
    return [
        Case(
            "grammar.apply_bitmask",
            case_name(dt, f"B{b}", f"V{v}", pattern),
            dt,
            {"batch": b, "vocab": v, "pattern": pattern},
        )
        for dt in DTYPES
        for b, v, pattern in SHAPES
    ]


def pack_bitmask(allowed: torch.Tensor) -> torch.Tensor:
    """bool [B, V] -> int32 [B, ceil(V / 32)], least significant bit first."""
    b, v = allowed.shape
    words = -(-v // 32)
    padded = torch.zeros(b, words * 32, dtype=torch.int64)
    padded[:, :v] = allowed.to(torch.int64)
    packed = (padded.view(b, words, 32) << torch.arange(32)).sum(dim=-1)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


def _inputs(case: Case, gen: torch.Generator) -> dict:
    b, v, pattern = case.params["batch"], case.params["vocab"], case.params["pattern"]
    if pattern == "all":
        allowed = torch.ones(b, v, dtype=torch.bool)
    elif pattern == "none":
        allowed = torch.zeros(b, v, dtype=torch.bool)
    elif pattern == "single":
        allowed = torch.zeros(b, v, dtype=torch.bool)
        allowed[torch.arange(b), torch.randint(0, v, (b,), generator=gen)] = True
        allowed[0, v - 1] = True  # the last token, in a partly used final word
    elif pattern == "sparse":
        allowed = torch.rand(b, v, generator=gen) < 0.01
    else:
        allowed = torch.rand(b, v, generator=gen) < 0.5
    bitmask = pack_bitmask(allowed)
    if v % 32:
        bitmask[:, -1] |= torch.tensor(-(2**31), dtype=torch.int32)  # a stray bit past V
    logits = torch.randn(b, v, generator=gen).to(case.dtype)
    return {"logits": logits, "bitmask": bitmask}


SPEC = register_spec(
    OpSpec(
        name="grammar.apply_bitmask",
        signature="(logits[B,V] float (mutated), bitmask[B,ceil(V/32)] int32) -> None",
        reference=apply_bitmask,
        cases=_cases,
        make_inputs=_inputs,
        tolerances={dt: Tolerance() for dt in DTYPES},
        metric=EXACT,
        mutates=("logits",),
    )
)
