"""--tp-size 2 --ep-size 2 through the Engine: a Qwen2-MoE (shared expert, one dense layer)
whose routed experts are split over the two ranks gives transformers' greedy tokens for a batch
of prompts; the startup info says which experts each rank holds. A bad layout is refused at
startup in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from tiny_models import hf_greedy, save_tiny_model  # noqa: E402

PROMPTS = [[1, 17, 33, 250, 99, 7, 41, 5], [1, 17, 33, 250, 99, 300, 2, 8, 61], [1, 5, 9]]
MAX_NEW = 8


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model("qwen2-moe", str(tmp_path_factory.mktemp("qwen2-moe")))


def test_ep2_engine_greedy_equals_transformers(model):
    from sglang import Engine

    with Engine(
        model_path=model,
        device="xeon",
        tp_size=2,
        ep_size=2,
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=512,
        chunked_prefill_size=4,
        log_level="warning",
    ) as engine:
        layout = engine.server_info["parallel"]
        assert (layout["ep_size"], layout["experts"]) == (2, "0-3 of 8")
        outs = engine.generate(
            input_ids=PROMPTS,
            sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
        )
    for prompt, out in zip(PROMPTS, outs):
        assert out["output_ids"] == hf_greedy(model, prompt, MAX_NEW)


def test_ep_must_divide_tp(model):
    from sglang import Engine

    with pytest.raises(ValueError, match="--ep-size 2 must divide --tp-size 1"):
        Engine(model_path=model, device="xeon", ep_size=2, skip_tokenizer_init=True)


def test_parallel_flags():
    import argparse

    from sglang.cli.args import add_cli_args, from_cli

    parser = argparse.ArgumentParser()
    add_cli_args(parser)
    args = from_cli(parser.parse_args(["--tp", "4", "--ep", "2", "--pp", "2"]))
    assert (args.tp_size, args.ep_size, args.pp_size) == (4, 2, 2)
    args = from_cli(parser.parse_args(["--tp-size", "2", "--ep-size", "2", "--pp-size", "1"]))
    assert (args.tp_size, args.ep_size, args.pp_size) == (2, 2, 1)
    with pytest.raises(ValueError, match="--ep-size 3 must divide --tp-size 4"):
        from_cli(parser.parse_args(["--tp", "4", "--ep", "3"]))
