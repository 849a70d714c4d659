"""--tp 2 --ep 2 through the HTTP server (python -m sglang.launch_server): a Qwen2-MoE whose
routed experts are split over the two ranks answers with transformers' greedy tokens, and
/get_server_info says which experts rank 0 holds."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from server_process import ServerProcess  # noqa: E402
from tiny_models import hf_greedy, save_tiny_model  # noqa: E402

PROMPTS = [[1, 17, 33, 250, 99, 7, 41, 5], [1, 5, 9]]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model("qwen2-moe", str(tmp_path_factory.mktemp("qwen2-moe")))


def test_ep2_server_greedy_equals_transformers(model):
    server = ServerProcess(
        "--model-path", model, "--tp", "2", "--ep", "2", "--dtype", "float32",
        "--skip-tokenizer-init", "--max-total-tokens", "2048", "--context-length", "1024",
    )  # fmt: skip
    try:
        info = httpx.get(server.base_url + "/get_server_info", timeout=10).json()
        assert (info["parallel"]["ep_size"], info["parallel"]["experts"]) == (2, "0-3 of 8")
        r = httpx.post(
            server.base_url + "/generate",
            json={"input_ids": PROMPTS, "sampling_params": {
                "max_new_tokens": 8, "temperature": 0, "ignore_eos": True}},
            timeout=60,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        outs = [o["output_ids"] for o in r.json()]
        assert outs == [hf_greedy(model, p, 8) for p in PROMPTS]
    finally:
        server.stop()
