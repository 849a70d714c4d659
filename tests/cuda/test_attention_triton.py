"""The cuda backend's Triton attention kernels against the reference (sglang.ops.attention).

Without a GPU the kernels run in Triton's interpreter on CPU tensors (TRITON_INTERPRET=1, set
before triton is imported), at the op specs' small shapes plus a few that force several decode
splits, the single-split direct path and windows inside splits. On a CUDA machine the same
cases run on the GPU.
"""

from __future__ import annotations

import importlib.util
import os
import zlib

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)
GPU = torch.cuda.is_available()
if not GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import kernel_checks  # noqa: E402
from sglang.ops import attention as ref  # noqa: E402
from sglang.ops.spec import Case  # noqa: E402
from sglang_triton import attention as tri  # noqa: E402

DEVICE = "cuda" if GPU else "cpu"
TOL = {torch.float32: 2e-5, torch.bfloat16: 1.6e-2, torch.float16: 2e-3}

# Extra geometries (seqs as (prefix, new)), beyond the spec's small ones.
EXTRA = {
    "splits": {"seqs": ((299, 1),), "heads": 8, "kv_heads": 2},
    "splits-window": {"seqs": ((250, 3), (40, 2)), "heads": 8, "kv_heads": 2, "sliding_window": 70},
    # gpt-oss's sinks where decode splits (the sink must count once over the splits), with a
    # window inside splits, and over long new spans
    "splits-sinks": {"seqs": ((299, 1), (0, 1)), "heads": 8, "kv_heads": 2, "sinks": True},
    "splits-window-sinks": {
        "seqs": ((250, 3), (40, 2)),
        "heads": 8,
        "kv_heads": 2,
        "sliding_window": 70,
        "sinks": True,
    },
    "group32": {"seqs": ((90, 4), (5, 2)), "heads": 32, "kv_heads": 1, "head_dim": 32},
    "D96-long-new": {
        "seqs": ((10, 70), (0, 65)),
        "heads": 4,
        "kv_heads": 2,
        "head_dim": 96,
        "logit_softcap": 7.0,
        "q_scale": 2.0,
    },
    # Gemma 2's combination: soft-cap, a scale apart from head_dim ** -0.5 and a window (over
    # decode splits too); q_scale makes scores reach the cap
    "window-softcap-scale": {
        "seqs": ((0, 13), (5, 11), (20, 1)),
        "heads": 4,
        "kv_heads": 2,
        "head_dim": 16,
        "sliding_window": 8,
        "logit_softcap": 20.0,
        "sm_scale": 24**-0.5,
        "q_scale": 3.0,
    },
    "splits-window-softcap-scale": {
        "seqs": ((250, 3), (40, 2)),
        "heads": 8,
        "kv_heads": 2,
        "sliding_window": 70,
        "logit_softcap": 20.0,
        "sm_scale": 0.2,
        "q_scale": 3.0,
    },
    "D64-long-new-window-sinks": {
        "seqs": ((10, 70), (0, 65)),
        "heads": 4,
        "kv_heads": 2,
        "sliding_window": 20,
        "sinks": True,
    },
}


def cases(op: str) -> list[Case]:
    spec = ref.EXTEND if op == "attention.extend" else ref.DECODE
    small = [
        c
        for c in spec.cases()
        if kernel_checks.declared(c)
        and "B8-" not in c.name
        and "B6-" not in c.name
        and "prefix200" not in c.name
        and "mixed-window" not in c.name
    ]
    extra = []
    for dtype in (torch.float32, torch.bfloat16):
        for label, shape in EXTRA.items():
            params = {**ref._DEFAULTS, **shape}
            if op == "attention.decode":
                params["seqs"] = tuple((p + n - 1, 1) for p, n in params["seqs"])
            extra.append(Case(op, f"{dtype}-{label}", dtype, params))
    return small + extra


def check(op: str, case: Case, launch: dict | None = None) -> None:
    spec = ref.EXTEND if op == "attention.extend" else ref.DECODE
    gen = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))
    args = spec.make_inputs(case, gen)
    expected = spec.reference(
        **{
            k: (v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
            for k, v in args.items()
        }
    )
    dev = {k: (v.to(DEVICE) if isinstance(v, torch.Tensor) else v) for k, v in args.items()}
    kernel = tri.extend if op == "attention.extend" else tri.decode
    got = (kernel(**dev) if launch is None else kernel(**dev, launch=launch)).cpu()
    assert got.shape == expected.shape and got.dtype == case.dtype
    assert torch.isfinite(got).all()
    tol = TOL[case.dtype]
    torch.testing.assert_close(got.double(), expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("case", cases("attention.decode"), ids=lambda c: c.name)
def test_decode(case):
    check("attention.decode", case)


@pytest.mark.parametrize("case", cases("attention.extend"), ids=lambda c: c.name)
def test_extend(case):
    check("attention.extend", case)


@pytest.mark.parametrize(
    "launch",
    ({"merge": False}, {"merge": True}, {"merge": True, "skip_empty": True}),
    ids=("merge-kernel", "merged-in-split", "merged-in-split-skip-empty"),
)
@pytest.mark.parametrize(
    "case", [c for c in cases("attention.decode") if "splits" in c.name], ids=lambda c: c.name
)
def test_decode_split_merges(case, launch):
    """The splits merged by the last split program (the default; with skip_empty, the last of
    the sequence's own splits, the empty ones exiting at once) or by the merge kernel, with
    many splits (programs_per_sm 32: most of them empty at these lengths), sinks and windows."""
    check("attention.decode", case, {**launch, "programs_per_sm": 32})


EXTEND_LAUNCHES = (
    {"block_m": 64, "block_n": 32, "num_warps": 4, "num_stages": 2},  # float32's, the old default
    {"block_m": 128, "block_n": 64, "num_warps": 8, "num_stages": 3},
    {"block_m": 64, "block_n": 128, "num_warps": 4, "num_stages": 2},
)


@pytest.mark.parametrize("launch", EXTEND_LAUNCHES, ids=lambda c: f"m{c['block_m']}n{c['block_n']}")
@pytest.mark.parametrize(
    "case",
    [c for c in cases("attention.extend") if "long-new" in c.name or "splits" in c.name],
    ids=lambda c: c.name,
)
def test_extend_other_tiles(case, launch):
    """Tiles other than the default (a tuning run's candidates): full tiles before a block's
    first query skip the causal mask, so tile sizes move where that boundary falls."""
    check("attention.extend", case, launch)


def test_extend_launch_follows_shapes():
    """16-bit head-dim-128 prefill: 128 x 128 tiles for long prompts, 64 x 64 for short ones;
    float32 keeps the tiles that fit any GPU's shared memory. A function of shapes only."""
    q = torch.empty(4096, 32, 128, dtype=torch.bfloat16, device=DEVICE)
    auto = dict(tri.EXTEND_LAUNCH)
    assert tri._extend_launch(auto, 128, 128, q, True)["block_m"] == 128
    assert tri._extend_launch(auto, 128, 128, q, False)["block_n"] == 64
    assert tri._extend_launch(auto, 128, 128, q.float(), True)["num_stages"] == 2
    assert tri._extend_launch({**auto, "num_warps": 2}, 128, 128, q, True)["num_warps"] == 2


def test_decode_splits_follow_shapes_only():
    """The split count is a function of the batch size and heads (graph capture needs it)."""
    dev = torch.device(DEVICE)
    assert tri.decode_splits(1, 8, 1, dev) >= tri.decode_splits(64, 8, 1, dev) == 1
    assert tri.decode_splits(1, 1, 1, dev) <= tri.MAX_SPLITS
