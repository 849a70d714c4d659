"""Many concurrent streams with clients walking away, then a clean idle pool; SIGTERM with a
request in flight; the API key."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
from server_process import ServerProcess

PROMPTS = [f"Write one sentence about the number {i}." for i in range(5)]
# Special tokens kept in the text, so that it is the logprobs' tokens joined.
PARAMS = {"max_tokens": 16, "temperature": 0, "ignore_eos": True, "skip_special_tokens": False}


async def stream_completion(client, base_url, prompt, drop_after=None):
    """Returns the streamed text and finish reason, or None when this client hangs up after
    `drop_after` chunks."""
    body = {"model": "SmolLM2-135M-Instruct", "prompt": prompt, "stream": True, **PARAMS}
    text, chunks, finish = "", 0, None
    async with client.stream("POST", base_url + "/v1/completions", json=body) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunks += 1
            choice = json.loads(line[6:])["choices"][0]
            text += choice["text"]
            finish = choice.get("finish_reason") or finish
            if drop_after is not None and chunks >= drop_after:
                return None  # leaving the context closes the connection mid-stream
    return text, finish


NEAR_TIE = 0.5
"""Greedy tokens are compared up to the first whose top two logprobs (in the one-at-a-time run)
are closer than this: the default model's logits are bfloat16 (steps of 0.125 at their size),
and a batch of 200 may round a logit one step away from where a batch of one does."""


def clear_greedy_prefix(server, prompt: str) -> str:
    """The one-at-a-time greedy text up to its first near-tie (all of it when there is none)."""
    body = {"prompt": prompt, "logprobs": 2, **PARAMS}
    choice = httpx.post(server.base_url + "/v1/completions", timeout=120, json=body).json()
    logprobs = choice["choices"][0]["logprobs"]
    clear = 0
    for top in logprobs["top_logprobs"]:
        best = sorted(top.values(), reverse=True)
        if len(best) > 1 and best[0] - best[1] < NEAR_TIE:
            break
        clear += 1
    assert len(logprobs["tokens"]) == PARAMS["max_tokens"]
    assert "".join(logprobs["tokens"]) == choice["choices"][0]["text"]
    return "".join(logprobs["tokens"][:clear])


def test_200_streams_with_a_fifth_disconnecting(server):
    expected = [clear_greedy_prefix(server, p) for p in PROMPTS]

    async def run():
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=600, limits=limits) as client:
            tasks = [
                stream_completion(
                    client, server.base_url, PROMPTS[i % 5], 3 if i % 5 == 4 else None
                )
                for i in range(200)
            ]
            return await asyncio.gather(*tasks)

    results = asyncio.run(run())
    completed = [(i, t) for i, t in enumerate(results) if i % 5 != 4]
    assert len(completed) == 160
    for i, (text, finish) in completed:
        assert finish == "length" and text.startswith(expected[i % 5]), (i, text, finish)
    # Once idle, every KV slot is free again (after dropping what the prefix cache holds).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sched = httpx.get(server.base_url + "/get_server_info").json()["scheduler"]
        if sched["running"] == 0 and sched["waiting"] == 0:
            break
        time.sleep(0.5)
    assert sched["running"] == 0 and sched["waiting"] == 0
    assert sched["kv_free"] + sched["kv_cached"] == sched["kv_total"]
    assert httpx.post(server.base_url + "/flush_cache").status_code == 200
    sched = httpx.get(server.base_url + "/get_server_info").json()["scheduler"]
    assert sched["kv_free"] == sched["kv_total"]


def test_api_key_and_sigterm_with_a_request_in_flight():
    srv = ServerProcess("--api-key", "sekret", "--max-total-tokens", "4096")
    try:
        base = srv.base_url
        assert httpx.get(base + "/health").status_code == 200
        for path in ("/v1/models", "/get_model_info", "/metrics"):
            r = httpx.get(base + path)
            assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        wrong = httpx.get(base + "/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        auth = {"Authorization": "Bearer sekret"}
        assert httpx.get(base + "/v1/models", headers=auth).status_code == 200
        off = httpx.get(base + "/metrics", headers=auth)  # no --enable-metrics: 404, as SGLang
        assert off.status_code == 404 and "--enable-metrics" in off.json()["error"]["message"]

        result = {}

        def in_flight():
            result["r"] = httpx.post(
                base + "/v1/completions",
                headers=auth,
                timeout=120,
                json={"prompt": "Tell me a story.", **PARAMS, "max_tokens": 48},
            )

        t = threading.Thread(target=in_flight)
        t.start()
        time.sleep(1.5)
        code = srv.terminate(timeout=90)
        t.join(timeout=30)
        assert code == 0, srv.output()
        r = result["r"]
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 48
    finally:
        srv.stop()
