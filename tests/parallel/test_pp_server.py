"""--pp 2 through the HTTP server (python -m sglang.launch_server): greedy tokens equal
transformers'; the last stage's rank killed mid-request (rank 0 waits on its activations or
logits) fails that request, and the server reports it and stops within 30 s leaving no
process behind."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).parent))

from rank_kill import greedy_then_kill_rank  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def test_pp2_server_greedy_then_a_killed_stage_stops_it(model):
    server = ServerProcess(
        "--model-path", model, "--pp", "2", "--dtype", "float32", "--skip-tokenizer-init",
        "--max-total-tokens", "2048", "--context-length", "1024",
    )  # fmt: skip
    try:
        info = httpx.get(server.base_url + "/get_server_info", timeout=10).json()
        assert info["parallel"]["layers"] == "0 of 2"
        greedy_then_kill_rank(server, info["rank_pids"], model)
    finally:
        server.stop()
