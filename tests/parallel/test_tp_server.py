"""--tp 2 through the HTTP server (python -m sglang.launch_server): greedy tokens equal
transformers'; a rank killed mid-request fails that request, and the server reports it and
stops within 30 s leaving no process behind; a SIGKILLed server leaves no rank after 5 s (each
rank watches the process that spawned it)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from server_process import ServerProcess  # noqa: E402
from tiny_models import hf_greedy, save_tiny_model  # noqa: E402

PROMPT = [1, 17, 33, 250, 99, 7, 41, 5]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


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
        r = httpx.post(
            server.base_url + "/generate",
            json={"input_ids": PROMPT, "sampling_params": {
                "max_new_tokens": 8, "temperature": 0, "ignore_eos": True}},
            timeout=60,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["output_ids"] == hf_greedy(model, PROMPT, 8)

        result = {}

        def long_request():
            body = {"input_ids": PROMPT, "sampling_params": {
                "max_new_tokens": 900, "temperature": 0, "ignore_eos": True}}  # fmt: skip
            try:
                result["response"] = httpx.post(
                    server.base_url + "/generate", json=body, timeout=60
                )
            except httpx.HTTPError as e:
                result["error"] = e

        thread = threading.Thread(target=long_request)
        thread.start()
        time.sleep(1.0)  # decoding by now
        killed_at = time.monotonic()
        os.kill(pids[1], signal.SIGKILL)
        thread.join(40)
        response = result.get("response")
        assert response is None or response.status_code >= 500, "the request did not fail"
        assert server.proc.wait(timeout=30) is not None
        assert time.monotonic() - killed_at < 30
        assert wait_until(lambda: not any(alive(p) for p in pids), 5)
        assert "stopping the server" in server.output()
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
