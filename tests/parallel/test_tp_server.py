"""--tp 2 through the HTTP server (python -m sglang.launch_server): greedy tokens equal
transformers'; a rank killed mid-request fails that request, and the server reports it and
stops within 30 s leaving no process behind; a SIGKILLed server leaves no rank after 5 s (each
rank watches the process that spawned it)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).parent))

from rank_kill import alive, greedy_then_kill_rank, wait_until  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def start(model: str) -> tuple[ServerProcess, list[int]]:
    server = ServerProcess(
        "--model-path", model, "--tp", "2", "--dtype", "float32", "--skip-tokenizer-init",
        "--max-total-tokens", "2048", "--context-length", "1024",
    )  # fmt: skip
    info = httpx.get(server.base_url + "/get_server_info", timeout=10).json()
    assert info["tp_size"] == 2 and info["parallel"]["kv_heads"] == "0 of 2"
    return server, info["rank_pids"]


def test_tp2_server_greedy_then_a_killed_rank_stops_it(model):
    server, pids = start(model)
    try:
        greedy_then_kill_rank(server, pids, model)
    finally:
        server.stop()


def test_sigkilled_tp2_server_leaves_no_rank(model):
    server, pids = start(model)
    try:
        server.proc.kill()
        server.proc.wait(timeout=10)
        assert wait_until(lambda: not any(alive(p) for p in pids), 5), [p for p in pids if alive(p)]
    finally:
        server.stop()
