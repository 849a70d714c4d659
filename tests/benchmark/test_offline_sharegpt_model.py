"""benchmarks/offline_sharegpt_model.py's step accounting on small request lists."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from offline_sharegpt_model import Costs, Policy, simulate  # noqa: E402


def test_one_request_is_its_prefill_then_its_decode_steps():
    costs = Costs()
    r = simulate([100], [5], costs, Policy())
    expect = costs.step(100, 0, 100, True) + sum(
        costs.step(1, 100 + g, 0, True) for g in range(1, 5)
    )
    assert r["steps"] == {"prefill": 1, "decode": 4, "mixed": 0}
    assert r["seconds"] == pytest.approx(expect / 1e3)


def test_running_limit_and_mixing():
    ins, outs = [50] * 4, [3, 10, 3, 3]
    # two at a time: request 1 (10 tokens) runs on while 2 and 3 are admitted one by one
    alone = simulate(ins, outs, Costs(), Policy(max_running=2))
    assert alone["steps"] == {"prefill": 3, "decode": 9, "mixed": 0}
    # mixed: their prefills carry request 1's decode rows (its 9 tokens: 2 mixed + 7 decode)
    mixed = simulate(ins, outs, Costs(), Policy(max_running=2, mixed=True))
    assert mixed["steps"] == {"prefill": 1, "decode": 7, "mixed": 2}
    # mixed steps run eagerly: at these sizes the host time makes them the slower plan
    assert mixed["seconds"] > alone["seconds"]


def test_an_eager_step_costs_at_least_the_host_time():
    costs = Costs(eager_ms=13.0)
    assert costs.step(600, 0, 600, False) >= 13.0
    assert costs.step(1, 128, 0, True) < 13.0
