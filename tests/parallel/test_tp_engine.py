"""--tp-size 2 through the Engine: one scheduler process (rank 0, which decides and samples)
and one follower rank kept in lock-step by the broadcast batch plan; greedy tokens equal
transformers' (and so one process's) for a batch of prompts, with prefill chunks and the
prefix cache in play; the startup info says which rank holds which heads and vocabulary rows."""

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
    return save_tiny_model("qwen3", str(tmp_path_factory.mktemp("qwen3")))


def test_tp2_engine_greedy_equals_transformers(model):
    from sglang import Engine

    with Engine(
        model_path=model,
        device="xeon",
        tp_size=2,
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=512,
        chunked_prefill_size=4,  # several prefill forwards per prompt
        log_level="warning",
    ) as engine:
        layout = engine.server_info["parallel"]
        assert (layout["tp_size"], layout["query_heads"]) == (2, "0-1 of 4")
        outs = engine.generate(
            input_ids=PROMPTS,
            sampling_params={"max_new_tokens": MAX_NEW, "temperature": 0, "ignore_eos": True},
        )
    for prompt, out in zip(PROMPTS, outs):
        assert out["output_ids"] == hf_greedy(model, prompt, MAX_NEW)
