"""Tensor parallelism at the model-runner level: tiny random models (transformers configs,
save_pretrained) run with TP=2 in two gloo processes on the xeon backend give one process's
logits (float32: only the summation order differs, the partial products of the row-parallel
layers being added by the all-reduce) and the same greedy tokens.

The models cover the head layouts: 4 query / 2 KV heads (one KV head per rank), one KV head
(replicated on both ranks), Qwen3's per-head q/k norms, and a tied LM head over a vocabulary
that the ranks do not split evenly (509 rows: padded to 510, the padding dropped), and
gpt-oss's per-head attention sinks.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import save_tiny_model  # noqa: E402
from tp_ranks import model_logits, run_rank  # noqa: E402

BACKEND = "xeon"
MODELS = {
    "llama": ("llama", {}),
    "llama-1kv-tied-odd-vocab": (
        "llama",
        {"num_key_value_heads": 1, "tie_word_embeddings": True, "vocab_size": 509},
    ),
    "qwen3": ("qwen3", {}),
    "gpt-oss": ("gpt-oss", {}),  # attention sinks split with the query heads
}
RTOL = 1e-4  # float32 sums in another order: observed ~1e-6


@pytest.fixture(scope="module")
def platform():
    from sglang.backend.selection import select_platform

    try:
        p = select_platform(BACKEND)
    except Exception as e:
        pytest.skip(f"{BACKEND}: {e}")
    return p


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    paths = {}
    for key, (name, overrides) in MODELS.items():
        paths[key] = save_tiny_model(name, str(tmp_path_factory.mktemp(key)), **overrides)
    return paths


def run_tp(paths: list[str], tmp_path, world: int = 2, timeout: float = 180) -> list:
    ctx = mp.get_context("spawn")
    init_method = "file://" + str(tmp_path / "rendezvous")
    out = str(tmp_path / "rank0.pt")
    procs = [
        ctx.Process(target=run_rank, args=(r, world, init_method, paths, BACKEND, out))
        for r in range(world)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0] * world, "a rank failed (see its stderr)"
    return torch.load(out)


def test_tp2_equals_one_process(platform, model_paths, tmp_path):
    from sglang.parallel import SINGLE

    keys = list(MODELS)
    sharded = run_tp([model_paths[k] for k in keys], tmp_path)
    for key, (prefill, decode, fed) in zip(keys, sharded):
        want_prefill, want_decode, want_fed = model_logits(model_paths[key], platform, SINGLE)
        for got, want in ((prefill, want_prefill), (decode, want_decode)):
            err = float((got - want).norm() / want.norm())
            assert err < RTOL, f"{key}: logits relative error {err:.2e}"
        assert fed == want_fed, f"{key}: greedy tokens {fed} != one process's {want_fed}"
        assert prefill.shape[-1] == want_prefill.shape[-1]  # padding rows dropped
