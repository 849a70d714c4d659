"""--pp 2 through the HTTP server (python -m sglang.launch_server): greedy tokens equal
transformers'; the last stage's rank killed mid-request (rank 0 waits on its activations or
logits) fails that request, and the server reports it and stops within 30 s leaving no
process behind."""

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
sys.path.insert(0, str(Path(__file__).parent))

from server_process import ServerProcess  # noqa: E402
from test_tp_server import PROMPT, alive, wait_until  # noqa: E402
from tiny_models import hf_greedy, save_tiny_model  # noqa: E402


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
        pids = info["rank_pids"]
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
