"""moe.experts' few-pair decode path (sglang_triton.moe_decode: a gate/up GEMV per (pair,
column block), a down GEMV per (token, row block) summing the top_k slots) against the spec's
reference through the conformance runner: the spec's small cases, decode shapes its case list
does not have (one token over many experts, top-8, padded slots, 64 pairs), several launch
configurations (in Triton's interpreter where there is no GPU); and the dispatch."""

from __future__ import annotations

import functools

import kernel_checks as kc
import pytest
import torch
from sglang.ops import get_spec
from sglang.ops.spec import Case, case_name
from sglang_triton import moe, moe_decode


def small(case):
    p = case.params
    if p["hidden"] > 96 or p["tokens"] * p["top_k"] > moe_decode.MAX_PAIRS:
        return False
    # (requires: gpt-oss's swigluoai and expert biases, in every dtype)
    return case.dtype == torch.bfloat16 or p["pad"] or p["experts"] == 64 or bool(case.requires)


# moe_decode has no float16-specific code: in the interpreter the bf16 twins stand for them
@pytest.mark.parametrize("case", kc.params("moe.experts", small, f16_twins_on_gpu=True))
def test_decode_spec_cases(case):
    kc.check("moe.experts", moe_decode.experts_decode, case)


def _fp8_128(c) -> bool:
    return c.params.get("block") == (128, 128) and c.dtype == torch.bfloat16


def _int4_groups(c) -> bool:
    return c.params.get("block") == "int4" and c.params["group"] >= 64 and c.dtype != torch.float32


@pytest.mark.parametrize("case", kc.params("moe.experts", _int4_groups, f16_twins_on_gpu=True))
def test_decode_int4_groups(case):
    """Int4 experts in groups of 64 and 128, fractional zero points among them: K tiles of 64
    (gate/up) and 128 (down) across and within groups."""
    kc.check("moe.experts", moe_decode.experts_decode, case)


def _four_bit(c) -> bool:
    block = c.params.get("block")
    return block in ("int4", "mxfp4") and c.dtype == torch.bfloat16 and c.params["tokens"] > 0


@pytest.mark.parametrize("case", kc.params("moe.experts", _four_bit))
def test_decode_4bit_gather(case, monkeypatch):
    """MXFP4 and int4 rows on packed_tile's gather by input position (the path for groups
    packed_rows_dot's pairing refuses), with its launch (GATHER_LAUNCH)."""
    monkeypatch.setattr(moe_decode, "PAIRED_NIBBLES", False)
    kc.check("moe.experts", moe_decode.experts_decode, case)


def _four_bit_ragged(c) -> bool:
    """Two cases for a launch other than the default (which runs every 4-bit case above):
    MXFP4 with a ragged I and biases, int4 with fractional zeros over a K of 256."""
    return _four_bit(c) and c.params["tokens"] == 7


@pytest.mark.parametrize("case", kc.params("moe.experts", _four_bit_ragged))
def test_decode_4bit_packed_launch(case, monkeypatch):
    """MXFP4 and int4 rows on packed_rows_dot with PACKED_LAUNCH's overrides: K steps wider
    than the spec cases' K (masked), and than a group."""
    wide = {"gate_up": {"block_n": 16, "block_k": 256}, "down": {"block_n": 16, "block_k": 512}}
    monkeypatch.setattr(moe_decode, "PACKED_LAUNCH", wide)
    kc.check("moe.experts", moe_decode.experts_decode, case)


@pytest.mark.parametrize("case", kc.params("moe.experts", _fp8_128))
def test_decode_fp8_blocks_of_128(case):
    """DeepSeek-V3's 128x128 FP8 blocks: programs of 32 (gate/up) and 8 (down) rows within a
    block row, K tiles of 128 over a ragged I."""
    kc.check("moe.experts", moe_decode.experts_decode, case)


def _case(dt, t, d, i, e, k, act, pad, bias=False):
    name = case_name(
        dt,
        f"T{t}",
        f"D{d}",
        f"I{i}",
        f"E{e}",
        f"k{k}",
        act,
        "pad" if pad else "",
        "bias" if bias else "",
    )
    params = {
        "tokens": t,
        "hidden": d,
        "inter": i,
        "experts": e,
        "top_k": k,
        "activation": act,
        "pad": pad,
        "bias": bias,
    }
    return pytest.param(Case("moe.experts", name, dt, params), id=name)


DECODE = [
    _case(torch.bfloat16, 1, 128, 48, 32, 8, "silu", False),  # Qwen3-MoE-like, one token
    _case(torch.bfloat16, 8, 64, 24, 16, 8, "silu", True),  # 64 pairs, padded slots
    _case(torch.float16, 2, 200, 40, 8, 2, "gelu", False),  # ragged D and I
    _case(torch.float32, 3, 72, 20, 128, 4, "silu", False),
    _case(torch.bfloat16, 1, 128, 48, 32, 4, "swigluoai", False, True),  # gpt-oss-like, top-4
    _case(torch.float32, 5, 72, 40, 16, 4, "swigluoai", True, True),  # padded slots, biases
]


@pytest.mark.parametrize("case", DECODE)
def test_decode_shapes(case):
    kc.check("moe.experts", moe_decode.experts_decode, case)


LAUNCHES = (
    {
        "gate_up": {"block_n": 8, "block_k": 32, "num_warps": 2},
        "down": {"block_n": 32, "block_k": 16, "num_warps": 4},
    },
    {
        "gate_up": {"block_n": 64, "block_k": 256, "num_warps": 4},
        "down": {"block_n": 8, "block_k": 64, "num_warps": 1},
    },
    {"down": {"block_n": 16, "block_k": 32, "split": True}},  # a program per slot, summed in-kernel
)


@pytest.mark.parametrize("launch", LAUNCHES, ids=("small", "wide", "split"))
@pytest.mark.parametrize("case", DECODE[:3] + DECODE[-2:-1])
def test_decode_launches(case, launch):
    kc.check("moe.experts", functools.partial(moe_decode.experts_decode, launch=launch), case)


def test_experts_dispatches_few_pairs_to_the_decode_path(monkeypatch):
    calls = []
    real = moe_decode.experts_decode
    monkeypatch.setattr(
        moe_decode, "experts_decode", lambda *a, **kw: calls.append(1) or real(*a, **kw)
    )
    case = DECODE[0].values[0]
    args = get_spec("moe.experts").make_inputs(case, torch.Generator().manual_seed(case.seed))
    args = {k: v.to(kc.DEVICE) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    y = moe.experts(**args)
    assert calls == [1]
    monkeypatch.setattr(moe, "USE_DECODE", False)
    y_aligned = moe.experts(**args)
    assert calls == [1]
    torch.testing.assert_close(y.float(), y_aligned.float(), rtol=2e-2, atol=2e-2)
