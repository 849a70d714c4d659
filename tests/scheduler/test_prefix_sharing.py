"""Requests sharing a long prefix, all queued at once (the generated-shared-prefix workload in
small): the first one's prefill is cached as soon as it has run and the others are held back
one batch (in-batch prefix deferral), so every later request reuses the shared prefix, under
each policy and with chunked prefill, and the tokens equal those with --disable-radix-cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from sglang.engine.scheduler_process import build_scheduler  # noqa: E402
from sglang.sampling.params import SamplingParams  # noqa: E402
from sglang.scheduler.admission import IN_BATCH_PREFIX_MIN  # noqa: E402
from sglang.scheduler.req import Req  # noqa: E402
from sglang.server_args import ServerArgs  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402

N = 8
SYSTEM = [1] + [(11 * j) % 480 + 7 for j in range(199)]  # 200 shared tokens
PROMPTS = [SYSTEM + [(37 * i + 5 * j) % 480 + 9 for j in range(12)] for i in range(N)]
PARAMS = {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def run(path: str, prompts=PROMPTS, **kw) -> tuple[dict[str, list[int]], dict[str, int], object]:
    args = ServerArgs.from_kwargs(
        model_path=path,
        device="xeon",
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=4096,
        log_level="warning",
        **kw,
    )
    scheduler, _ = build_scheduler(args)
    for i, prompt in enumerate(prompts):
        req = Req(f"r{i}", prompt, SamplingParams.from_dict(PARAMS), scheduler.eos_ids)
        assert scheduler.add_request(req) is None
    tokens: dict[str, list[int]] = {}
    cached: dict[str, int] = {}
    while scheduler.has_work():
        for out in scheduler.step():
            tokens.setdefault(out.rid, []).extend(out.new_token_ids)
            cached[out.rid] = out.cached_tokens
    scheduler.check_idle()
    return tokens, cached, scheduler


@pytest.fixture(scope="module")
def expected(model_dir):
    tokens, cached, _ = run(model_dir, disable_radix_cache=True)
    assert set(cached.values()) == {0}
    return tokens


@pytest.mark.parametrize(
    "kw",
    [
        {"schedule_policy": "fcfs", "chunked_prefill_size": -1},
        {"schedule_policy": "lpm", "chunked_prefill_size": -1},
        {"schedule_policy": "fcfs", "chunked_prefill_size": 64},
    ],
    ids=["fcfs", "lpm", "fcfs-chunked"],
)
def test_queued_requests_share_the_first_ones_prefix(model_dir, expected, kw):
    tokens, cached, scheduler = run(model_dir, **kw)
    assert tokens == expected
    assert cached["r0"] == 0
    assert all(cached[f"r{i}"] > 0 for i in range(1, N)), cached
    assert sum(cached.values()) >= 0.8 * len(SYSTEM) * (N - 1), cached
    if kw["chunked_prefill_size"] < 0:  # one prefill for r0, one for all the others
        assert all(cached[f"r{i}"] >= len(SYSTEM) for i in range(1, N)), cached
        assert scheduler.stats.prefill_steps == 2


def test_short_overlaps_are_not_held_back(model_dir):
    """Prompts that differ right after BOS (< IN_BATCH_PREFIX_MIN shared) go in one batch."""
    assert IN_BATCH_PREFIX_MIN > 1
    prompts = [p[:1] + p[-12:] + SYSTEM[1:] for p in PROMPTS]
    _, cached, scheduler = run(model_dir, prompts, chunked_prefill_size=-1)
    assert scheduler.stats.prefill_steps == 1
    assert set(cached.values()) == {0}
