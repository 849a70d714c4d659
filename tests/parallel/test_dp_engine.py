"""--dp-size 2 through the Engine: two replicas, each its own scheduler process on its own
device index, behind one frontend. Greedy tokens equal transformers' (and so one process's);
both replicas served requests (their own schedulers' counters, not the frontend's); the
load balancer's two methods place requests as SGLang's names say."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from tiny_models import hf_greedy, save_tiny_model  # noqa: E402

PROMPTS = [[1, 17, 33, 250, 99, 7, 41, 5], [1, 17, 33, 250, 99, 300, 2, 8, 61], [1, 5, 9], [1, 2]]
MAX_NEW = 6


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def test_load_balancer_methods():
    from sglang.engine.replicas import LoadBalancer

    rr = LoadBalancer(2, "round_robin")
    assert [rr.assign(f"r{i}") for i in range(4)] == [0, 1, 0, 1]
    sq = LoadBalancer(3, "shortest_queue")
    assert [sq.assign(r) for r in "abc"] == [0, 1, 2]  # ties go round
    sq.release("b")
    assert sq.assign("d") == 1  # the only replica with nothing in flight
    sq.release("a")
    sq.release("c")
    assert sq.assign("e") == 2 and sq.assign("f") == 0  # ties round from the last pick
    assert sq.describe()["requests"] == [2, 2, 2]
    assert sq.describe()["in_flight"] == [1, 1, 1]


@pytest.mark.parametrize("method, tp", [("round_robin", 1), ("shortest_queue", 2)])
def test_dp2_engine_greedy_equals_transformers_on_both_replicas(model, method, tp):
    """DP 2 of single processes, and DP 2 of TP 2 (four ranks: two replicas of two)."""
    from sglang import Engine

    with Engine(
        model_path=model,
        device="xeon",
        dp_size=2,
        tp_size=tp,
        load_balance_method=method,
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=256,
        log_level="warning",
    ) as engine:
        replicas = engine.server_info["replicas"]
        assert [r["replica"] for r in replicas] == [0, 1]
        devices = [[0, 1], [2, 3]] if tp == 2 else [[0], [1]]  # base-gpu-id + replica * tp + r
        assert [r["device_indices"] for r in replicas] == devices
        assert [r["parallel"]["tp_size"] for r in replicas] == [tp, tp]
        assert len(set(engine.server_info["rank_pids"])) == 2 * tp
        outs = engine.generate(
            input_ids=PROMPTS,
            sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
        )
        stats = engine.get_stats()
    for prompt, out in zip(PROMPTS, outs):
        assert out["output_ids"] == hf_greedy(model, prompt, MAX_NEW)
    per_replica = stats["replicas"]
    assert [r["requests"] for r in per_replica] == [2, 2]
    assert all(r["generated_tokens"] == 2 * MAX_NEW for r in per_replica)  # their schedulers'
    assert stats["generated_tokens"] == len(PROMPTS) * MAX_NEW


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(nnodes=2, tp_size=2), "needs --dist-init-addr"),
        (dict(nnodes=2, tp_size=3, dist_init_addr="127.0.0.1:5000"), "do not split over --nnodes"),
        (dict(nnodes=2, tp_size=2, dp_size=2, dist_init_addr="h:5000"), "not served yet"),
        (dict(dist_init_addr="127.0.0.1"), "expected HOST:PORT"),
    ],
)
def test_multinode_flags_checked_before_anything_loads(kwargs, message):
    from sglang.engine.preflight import StartupError, check_parallel
    from sglang.server_args import ServerArgs

    with pytest.raises(StartupError, match=message):
        check_parallel(ServerArgs.from_kwargs(**kwargs))


def test_engine_refuses_a_ranks_only_node():
    from sglang import Engine
    from sglang.engine.preflight import StartupError

    with pytest.raises(StartupError, match="sglang serve"):
        Engine(nnodes=2, node_rank=1, tp_size=2, dist_init_addr="127.0.0.1:5000")
