"""What the parallel server tests share: a rank's liveness, waiting on a condition, and the
check that a server's greedy tokens equal transformers' and that killing one of its ranks
mid-request fails that request and stops the server within 30 s, leaving no rank behind."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))

from tiny_models import hf_greedy  # noqa: E402

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


def greedy_then_kill_rank(server, pids: list[int], model: str, victim: int = 1) -> None:
    """8 greedy tokens equal transformers'; then rank `victim` SIGKILLed while a long request
    decodes: the request fails, the server stops within 30 s and reports it, no rank lives on."""
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
            result["response"] = httpx.post(server.base_url + "/generate", json=body, timeout=60)
        except httpx.HTTPError as e:
            result["error"] = e

    thread = threading.Thread(target=long_request)
    thread.start()
    time.sleep(1.0)  # decoding by now
    killed_at = time.monotonic()
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(40)
    response = result.get("response")
    assert response is None or response.status_code >= 500, "the request did not fail"
    assert server.proc.wait(timeout=30) is not None
    assert time.monotonic() - killed_at < 30
    assert wait_until(lambda: not any(alive(p) for p in pids), 5)
    assert "stopping the server" in server.output()
