"""Expert parallelism at the model-runner level: tiny random MoE models (transformers configs,
save_pretrained) run on two gloo ranks of the xeon backend give one process's logits and
greedy tokens. EP=2 (TP=2): each rank holds half the routed experts and runs only the slots
routed to them; EP=1 (TP=2): each rank holds half of every expert's intermediate features
(SGLang's MoE tensor parallelism). Both sum their partial outputs in one all-reduce.

Qwen2-MoE brings a gated shared expert (row-parallel itself) and a dense layer, Mixtral four
experts (two per rank), Qwen3-MoE a top-3 renormalised router, DeepSeek-V3 sigmoid routing
over expert groups with its correction bias (routing sees every expert on every rank),
gpt-oss expert biases (the down bias carried by one slice of each expert) and attention sinks;
its EP=1 run (every expert's features split) is in test_tensor_parallel.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).parent))

from test_tensor_parallel import RTOL, platform, run_tp  # noqa: E402, F401
from tiny_models import save_tiny_model  # noqa: E402
from tp_ranks import model_logits  # noqa: E402

RUNS = (
    ("qwen2-moe", 2),
    ("mixtral", 2),
    ("qwen3-moe", 2),
    ("deepseek-v3", 2),
    ("qwen2-moe", 1),
    ("gpt-oss", 2),
)


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    names = {name for name, _ in RUNS}
    return {n: save_tiny_model(n, str(tmp_path_factory.mktemp(n))) for n in names}


def test_ep2_equals_one_process(platform, model_paths, tmp_path):  # noqa: F811
    from sglang.parallel import SINGLE

    sharded = run_tp([(model_paths[name], ep) for name, ep in RUNS], tmp_path)
    for (name, ep), (prefill, decode, fed, layout) in zip(RUNS, sharded):
        if ep == 2:  # rank 0: the first half of the experts, whole
            assert "expert_features" not in layout
            assert layout["experts"] == (
                "0-1 of 4" if name in ("mixtral", "gpt-oss") else "0-3 of 8"
            )
        else:  # every expert, the first half of its features
            assert (layout["experts"], layout["expert_features"]) == ("all 8", "0-15 of 32")
        want_prefill, want_decode, want_fed = model_logits(model_paths[name], platform, SINGLE)
        for got, want in ((prefill, want_prefill), (decode, want_decode)):
            err = float((got - want).norm() / want.norm())
            assert err < RTOL, f"{name} ep={ep}: logits relative error {err:.2e}"
        assert fed == want_fed, f"{name} ep={ep}: greedy tokens {fed} != one process's {want_fed}"


def test_expert_shards_of_a_rank():
    """Which experts and features a TP rank holds (SGLang's order: EP rank = tp rank // (tp/ep),
    the intermediate slice = tp rank % (tp/ep))."""
    from sglang.parallel.state import GroupInfo, expert_groups

    layout = {
        (t, ep): tuple((g.rank, g.size) for g in expert_groups(GroupInfo(t, 4), ep))
        for t in range(4)
        for ep in (1, 2, 4)
    }
    assert [layout[t, 2] for t in range(4)] == [
        ((0, 2), (0, 2)),
        ((0, 2), (1, 2)),
        ((1, 2), (0, 2)),
        ((1, 2), (1, 2)),
    ]
    assert [layout[t, 4][0] for t in range(4)] == [(t, 4) for t in range(4)]
    assert [layout[t, 1][1] for t in range(4)] == [(t, 4) for t in range(4)]
