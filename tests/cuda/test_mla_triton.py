"""The Triton MLA kernels (sglang_triton.mla: attention.mla_decode, attention.mla_extend) against
the float64 references of sglang.ops.mla.

Without a GPU they run in Triton's interpreter on CPU tensors: the op specs' cases through the
conformance runner (their tolerances), plus geometries the specs do not reach: many query heads
(several head blocks), a head count that is not a power of two, R and P that are not, decode and
extend over several KV splits, the un-absorbed extend path, and a kv_indices buffer longer than
the batch's keys (as the prefill graphs pass it). Then a tiny DeepSeek-V2 end to end (the
model-level conformance check) on a backend holding these kernels. On a CUDA machine the same
run on the GPU, plus CUDA-graph capture and replay of both ops at new lengths.
"""

from __future__ import annotations

import zlib

import kernel_checks as kc
import pytest
import torch
from sglang.backend.selection import Platform
from sglang.conformance import model as model_check
from sglang.conformance.runner import PASSED
from sglang.layers.ops_table import OpTable
from sglang.ops import mla as ref
from sglang.ops.spec import Case
from sglang_triton import mla

DEVICE = kc.DEVICE
TOL = {torch.float32: 2e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}


@pytest.mark.parametrize("case", kc.params("attention.mla_decode"))
def test_decode_spec_cases(case):
    kc.check("attention.mla_decode", mla.mla_decode, case)


@pytest.mark.parametrize("case", kc.params("attention.mla_extend"))
def test_extend_spec_cases(case):
    kc.check("attention.mla_extend", mla.mla_extend, case)


# (label, seqs as (cached prefix, new tokens), heads, R, P, Dn, Dv)
EXTRA = (
    # 128 heads (DeepSeek-V3 on one GPU): 8 head blocks in decode, 2 tokens a block in extend
    ("h128", ((20, 3), (0, 2)), 128, 32, 16, 16, 16),
    ("h20", ((7, 9), (40, 1), (0, 1)), 20, 64, 32, 32, 32),  # heads not a power of two
    ("r48-p8", ((12, 5), (0, 18)), 4, 48, 8, 16, 24),  # R, P padded (P below an MMA tile)
    # long enough for several KV splits (decode: up to 8 on the interpreter's 4 "SMs")
    ("splits", ((700, 1), (130, 1), (0, 1)), 16, 64, 32, 32, 32),
    ("splits-extend", ((600, 7), (3, 40)), 16, 64, 32, 32, 32),
)


def extra_cases(op: str) -> list[Case]:
    out = []
    for dtype in (torch.float32, torch.bfloat16):
        for label, seqs, heads, rank, rope, nope, v_dim in EXTRA:
            if op == "attention.mla_decode":
                seqs = tuple((p + n - 1, 1) for p, n in seqs)
            params = dict(seqs=seqs, heads=heads, rank=rank, rope=rope, nope=nope, v_dim=v_dim)
            out.append(Case(op, f"{str(dtype)[6:]}-{label}", dtype, params))
    return out


def run(op: str, case: Case, fn, padded_indices: int = 0):
    """(kernel output on the CPU, float64 reference). padded_indices: kv_indices gets that many
    more (garbage) entries past the batch's keys, which no kernel may read."""
    spec = ref.DECODE if op == "attention.mla_decode" else ref.EXTEND
    gen = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))
    args = spec.make_inputs(case, gen)
    wide = {
        k: (v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
        for k, v in args.items()
    }
    expected = spec.reference(**wide)
    if padded_indices:
        junk = torch.full((padded_indices,), 10**9, dtype=args["kv_indices"].dtype)
        args["kv_indices"] = torch.cat([args["kv_indices"], junk])
    dev = {k: (v.to(DEVICE) if isinstance(v, torch.Tensor) else v) for k, v in args.items()}
    got = fn(**dev).cpu()
    assert got.shape == expected.shape and got.dtype == case.dtype
    assert torch.isfinite(got).all()
    return got, expected


def close(got, expected, dtype):
    tol = TOL[dtype]
    torch.testing.assert_close(got.double(), expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("case", extra_cases("attention.mla_decode"), ids=lambda c: c.name)
def test_decode_extra(case):
    close(*run("attention.mla_decode", case, mla.mla_decode), case.dtype)


@pytest.mark.parametrize("case", extra_cases("attention.mla_extend"), ids=lambda c: c.name)
def test_extend_absorbed_extra(case):
    close(*run("attention.mla_extend", case, mla.mla_extend), case.dtype)


@pytest.mark.parametrize(
    "case",
    [c for c in extra_cases("attention.mla_extend") if "h20" in c.name or "r48" in c.name],
    ids=lambda c: c.name,
)
def test_extend_unabsorbed(case):
    """Longer eager prefills go un-absorbed (keys and values up-projected, attention.extend)."""

    def unabsorbed(**kw):
        return mla.mla_extend(**kw, launch={"absorb_max_tokens": 0})

    close(*run("attention.mla_extend", case, unabsorbed), case.dtype)


@pytest.mark.parametrize("op", ["attention.mla_decode", "attention.mla_extend"])
def test_keys_past_the_batch_are_never_read(op):
    """The prefill and decode graphs pass kv_indices buffers of their whole capacity: entries
    past kv_indptr[-1] hold anything (here slot 10^9, out of bounds)."""
    case = next(c for c in extra_cases(op) if c.name == "float32-h20")
    fn = mla.mla_decode if op == "attention.mla_decode" else mla.mla_extend
    close(*run(op, case, fn, padded_indices=1000), case.dtype)


def test_a_graph_sized_kv_indices_buffer_takes_the_absorbed_path():
    """Past absorb_max_tokens, a kv_indices buffer far longer than the new tokens (the prefill
    graphs' warm-up passes their whole capacity) still runs absorbed: the un-absorbed form would
    up-project every entry (here out of bounds: it would raise)."""
    case = next(c for c in extra_cases("attention.mla_extend") if c.name == "float32-h20")

    def long_prefill(**kw):
        return mla.mla_extend(**kw, launch={"absorb_max_tokens": 0})

    close(*run("attention.mla_extend", case, long_prefill, padded_indices=5000), case.dtype)


def test_splits_follow_shapes_only():
    """The KV split count comes from the program count (shapes), never from the lengths."""
    dev = torch.device(DEVICE)
    assert mla.decode_splits(1, 1, 1, dev) > mla.decode_splits(256, 1, 8, dev) == 1


# --- a tiny DeepSeek-V2 end to end ---------------------------------------------------------
DEEPSEEK = (
    "DeepseekV2Config",
    "DeepseekV2ForCausalLM",
    {
        "moe_intermediate_size": 32,
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "n_shared_experts": 1,
        "first_k_dense_replace": 1,
        "q_lora_rank": None,
        "kv_lora_rank": 32,
        "qk_rope_head_dim": 16,
        "qk_nope_head_dim": 32,
        "v_head_dim": 24,
        "topk_method": "greedy",
    },
)


@pytest.fixture
def found(monkeypatch):
    monkeypatch.setitem(model_check.MODELS, "deepseek-v2", DEEPSEEK)
    return kc.reference_and_kernels(
        ("sglang_triton.attention", "sglang_triton.mla", "sglang_triton.kv")
    )


def test_deepseek_takes_the_triton_mla_kernels(found):
    ops = OpTable(Platform(found, found.backends["k"], "test"))
    assert ops.choices["attention.mla_decode"] == "cuda.triton_mla_decode"
    assert ops.choices["attention.mla_extend"] == "cuda.triton_mla_extend"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_deepseek_model_matches_the_reference(found, dtype):
    """Chunked prefill over a cached prefix and decode steps over a shuffled paged cache, in
    float64 on the reference backend against the Triton MLA kernels (conformance.model)."""
    results = model_check.run_model_cases(found, found.backends["k"], "deepseek-v2", dtype)
    for r in results.values():
        assert r.status == PASSED, f"{r.id}: {r.status}: {r.reason}"


# --- CUDA graphs (GPU only) ------------------------------------------------------------------
@pytest.mark.skipif(not kc.GPU, reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("op", ["attention.mla_decode", "attention.mla_extend"])
def test_graph_capture_and_replay_at_new_lengths(op):
    """Captured once with static buffers (kv_indices of a fixed capacity), replayed after the
    lengths, the slots and the query change: the result equals an eager call's."""
    heads, rank, rope, nope, v_dim = 16, 512, 64, 128, 128
    gen = torch.Generator().manual_seed(0)
    dt, dev = torch.bfloat16, torch.device("cuda")
    cache = torch.randn(4096, 1, rank + rope, generator=gen).to(dev, dt)
    decode = op == "attention.mla_decode"
    width = rank + rope if decode else nope + rope
    w_kc = (torch.randn(heads, nope, rank, generator=gen) * rank**-0.5).to(dev, dt)
    w_vc = (torch.randn(heads, v_dim, rank, generator=gen) * rank**-0.5).to(dev, dt)
    tokens, seqs, capacity = (4, 4, 4000) if decode else (24, 3, 4000)
    q = torch.zeros(tokens, heads, width, device=dev, dtype=dt)
    qo = torch.zeros(seqs + 1, dtype=torch.int32, device=dev)
    kv = torch.zeros(seqs + 1, dtype=torch.int32, device=dev)
    idx = torch.zeros(capacity, dtype=torch.int64, device=dev)

    def call(qo=qo, kv=kv, idx=idx):
        if decode:
            return mla.mla_decode(q, cache, kv, idx, 0.07, rank)
        return mla.mla_extend(q, cache, qo, kv, idx, w_kc, w_vc, 0.07)

    def fill(new, total):
        q.copy_(torch.randn(q.shape, generator=gen).to(dev, dt))
        qo.copy_(torch.tensor([0, *new], dtype=torch.int32).cumsum(0))
        kv.copy_(torch.tensor([0, *total], dtype=torch.int32).cumsum(0))
        idx.copy_(torch.randperm(4096, generator=gen)[:capacity].to(dev))

    fill([1] * seqs if decode else [8, 8, 8], [5, 300, 9, 1] if decode else [8, 20, 1000])
    call()  # compile outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = call()
    fill([1] * seqs if decode else [20, 3, 1], [1500, 2, 64, 700] if decode else [20, 3, 2000])
    graph.replay()
    torch.cuda.synchronize()
    # eagerly on fresh index tensors (extend keeps its query blocks per qo_indptr tensor)
    eager = call(qo.clone(), kv.clone(), idx.clone())
    torch.testing.assert_close(out, eager, atol=2e-2, rtol=2e-2)
