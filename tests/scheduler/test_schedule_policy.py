"""--schedule-policy through the real scheduler on a tiny model (xeon): one request runs at a
time (--max-running-requests 1), so the order in which requests produce their first token is
the policy's admission order; greedy tokens are the same under every policy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from sglang.engine.scheduler_process import build_scheduler  # noqa: E402
from sglang.sampling.params import SamplingParams  # noqa: E402
from sglang.scheduler.req import Req  # noqa: E402
from sglang.server_args import SCHEDULE_POLICIES, ServerArgs  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def run(path, requests, warm=(), priorities=None, **kw):
    """requests: (rid, prompt, max_new_tokens), queued at once after the `warm` prompts have
    run (to fill the prefix cache). Returns (admission order, tokens by rid)."""
    args = ServerArgs.from_kwargs(
        model_path=path,
        device="xeon",
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=4096,
        max_running_requests=1,
        log_level="warning",
        **kw,
    )
    scheduler, _ = build_scheduler(args)

    def drain(reqs, priorities=None):
        for i, (rid, prompt, n) in enumerate(reqs):
            params = SamplingParams.from_dict(
                {"max_new_tokens": n, "temperature": 0, "ignore_eos": True}
            )
            req = Req(rid, prompt, params, scheduler.eos_ids)
            req.priority = priorities[i] if priorities else None
            assert scheduler.add_request(req) is None
        order, tokens = [], {}
        while scheduler.has_work():
            for out in scheduler.step():
                if out.rid not in tokens:
                    order.append(out.rid)
                tokens.setdefault(out.rid, []).extend(out.new_token_ids)
        return order, tokens

    drain([(f"warm{i}", p, 1) for i, p in enumerate(warm)])
    order, tokens = drain(requests, priorities)
    scheduler.check_idle()
    return order, tokens


def prompt(i, prefix=()):
    return [1, *prefix] + [(29 * i + 7 * j) % 480 + 9 for j in range(10)]


LENGTHS = [3, 9, 1, 6, 4]
REQUESTS = [(f"r{i}", prompt(i), n) for i, n in enumerate(LENGTHS)]


def test_lof_admits_the_longest_output_first(model_dir):
    fcfs_order, fcfs_tokens = run(model_dir, REQUESTS)
    assert fcfs_order == [r[0] for r in REQUESTS]
    order, tokens = run(model_dir, REQUESTS, schedule_policy="lof")
    assert order == ["r1", "r3", "r4", "r0", "r2"]  # 9, 6, 4, 3, 1 new tokens
    assert tokens == fcfs_tokens


def test_random_shuffles_by_seed(model_dir):
    orders = {}
    for seed in (1, 2, 3):
        order, tokens = run(model_dir, REQUESTS, schedule_policy="random", random_seed=seed)
        assert sorted(order) == sorted(r[0] for r in REQUESTS)
        assert {rid: len(t) for rid, t in tokens.items()} == {r[0]: r[2] for r in REQUESTS}
        orders[seed] = order
    assert len({tuple(o) for o in orders.values()}) > 1  # not arrival order every time
    again, _ = run(model_dir, REQUESTS, schedule_policy="random", random_seed=2)
    assert again == orders[2]


def test_dfs_weight_groups_requests_by_cached_prefix(model_dir):
    """Five requests under cached prefix A and two under B, queued interleaved: dfs-weight
    admits the heavier group's requests first; fcfs takes arrival order."""
    a = [(13 * j) % 480 + 5 for j in range(40)]
    b = [(17 * j) % 480 + 11 for j in range(40)]
    groups = ["a", "b", "a", "b", "a", "a", "a"]
    reqs = [(f"{g}{i}", prompt(i, a if g == "a" else b), 2) for i, g in enumerate(groups)]
    warm = [[1, *a], [1, *b]]
    fcfs_order, fcfs_tokens = run(model_dir, reqs, warm)
    assert fcfs_order == [r[0] for r in reqs]
    order, tokens = run(model_dir, reqs, warm, schedule_policy="dfs-weight")
    assert [rid[0] for rid in order[:3]] == ["a", "a", "a"], order
    assert tokens == fcfs_tokens


def test_unknown_policy_is_refused():
    assert {"fcfs", "lpm", "dfs-weight", "lof", "random"} <= set(SCHEDULE_POLICIES)
    with pytest.raises(ValueError, match="--schedule-policy must be one of"):
        ServerArgs.from_kwargs(model_path="x", schedule_policy="longest")


def test_dfs_weight_order_on_a_nested_tree():
    """Prefixes A and A+B cached, C cached: requests under A+B (2), at A (1), at C (1) and with
    nothing cached (1). The A subtree (3) goes first, deepest requests before their ancestor's,
    then C, then the root's; lpm and lof on the same queue for contrast."""
    import torch
    from sglang.cache import RadixCache
    from sglang.mem import KVSlotAllocator
    from sglang.scheduler import policy

    alloc = KVSlotAllocator(256, torch.device("cpu"), debug=True)
    cache = RadixCache(alloc)
    a, ab, c = [5, 6, 7, 8], [5, 6, 7, 8, 20, 21, 22], [40, 41, 42]
    for key in (a, ab, c):
        slots = alloc.alloc(len(key))
        alloc.free(slots[: cache.insert(key, slots)])

    def req(rid, ids, n):
        return Req(rid, ids, SamplingParams.from_dict({"max_new_tokens": n}), [])

    waiting = [
        req("none", [90, 91], 5),
        req("c", c + [1], 1),
        req("a", a + [9], 2),
        req("ab1", ab + [3], 4),
        req("ab2", ab + [4], 3),
    ]

    def match(r):
        m = cache.match_prefix(r.fill_ids[:-1])
        return m.indices.numel(), m.last_node

    rng = __import__("random").Random(0)
    order = policy.order_waiting("dfs-weight", waiting, match, cache.root, rng)
    assert [r.rid for r in order] == ["ab1", "ab2", "a", "c", "none"]
    lpm = policy.order_waiting("lpm", waiting, match, cache.root, rng)
    assert [r.rid for r in lpm] == ["ab1", "ab2", "a", "c", "none"]  # 7, 7, 4, 3, 0 cached
    assert [r.rid for r in policy.order_waiting("lof", waiting, None, None, rng)] == [
        "none",
        "ab1",
        "ab2",
        "a",
        "c",
    ]
    # no prefix cache: the cache-aware policies keep arrival order
    fcfs = [r.rid for r in waiting]
    assert [r.rid for r in policy.order_waiting("dfs-weight", waiting, None, None, rng)] == fcfs


@pytest.mark.parametrize("low_first", [False, True])
def test_priority_orders_the_queue_before_the_policy(model_dir, low_first):
    """--enable-priority-scheduling: priority first (None as 0), then the policy (lof here)."""
    prios = [None, 2, 0, 2, -1]
    reqs = [(f"r{i}", prompt(i), n) for i, n in enumerate(LENGTHS)]
    args = dict(enable_priority_scheduling=True, schedule_low_priority_values_first=low_first)
    order, _ = run(model_dir, reqs, priorities=prios, schedule_policy="lof", **args)
    # priority 2: r1 (9 tokens), r3 (6); 0: r0 (3, None), r2 (1); -1: r4
    want = ["r1", "r3", "r0", "r2", "r4"]
    if low_first:  # -1: r4; 0: r0, r2 by lof; 2: r1, r3
        want = ["r4", "r0", "r2", "r1", "r3"]
    assert order == want
    fcfs, _ = run(model_dir, reqs, priorities=prios, schedule_policy="priority")
    assert fcfs == ["r1", "r3", "r0", "r2", "r4"]  # fcfs within priorities
