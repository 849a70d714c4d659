"""--dp 2 through the HTTP server, with the openai client: greedy completions equal
transformers' (and so one process's), both replicas served requests (each replica's own
scheduler counters in /get_server_info), and a replica killed makes requests fail with 503 and
the server stop within 30 s, leaving no process behind."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from rank_kill import alive, wait_until  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from tiny_models import hf_greedy, save_tiny_model  # noqa: E402

PROMPTS = [[1, 17, 33, 250, 99, 7, 41, 5], [1, 5, 9, 1200, 31], [1, 2, 3], [1, 900, 77, 13]]
MAX_NEW = 6


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny random Llama with the default model's vocabulary and tokenizer beside it, so the
    OpenAI routes (which answer text) can run on it."""
    from sglang.model_loader import default_model_path, load_tokenizer

    tokenizer = load_tokenizer(default_model_path())
    path = save_tiny_model(
        "llama", str(tmp_path_factory.mktemp("llama")), vocab_size=len(tokenizer)
    )
    tokenizer.save_pretrained(path)
    return path, tokenizer


def test_dp2_server_openai_greedy_both_replicas_then_a_dead_replica_stops_it(model):
    import openai

    path, tokenizer = model
    server = ServerProcess(
        "--model-path", path, "--dp", "2", "--load-balance-method", "round_robin",
        "--dtype", "float32", "--max-total-tokens", "1024", "--context-length", "512",
        "--enable-metrics",
    )  # fmt: skip
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)
        for prompt in PROMPTS:
            out = client.completions.create(
                model=path, prompt=prompt, max_tokens=MAX_NEW, temperature=0,
                extra_body={"ignore_eos": True, "skip_special_tokens": False},
            )  # fmt: skip
            expected = tokenizer.decode(hf_greedy(path, prompt, MAX_NEW))
            assert out.choices[0].text == expected
        info = httpx.get(server.base_url + "/get_server_info", timeout=30).json()
        assert info["dp_size"] == 2 and len(info["replicas"]) == 2
        replicas = info["scheduler"]["replicas"]
        assert [r["requests"] for r in replicas] == [2, 2]
        assert [r["generated_tokens"] for r in replicas] == [2 * MAX_NEW, 2 * MAX_NEW]
        metrics = httpx.get(server.base_url + "/metrics", timeout=30).text
        for replica in ("0", "1"):
            line = f'sglang:num_requests_per_dp_rank{{dp_rank="{replica}",model_name="'
            assert any(x.startswith(line) and x.endswith(" 2.0") for x in metrics.splitlines())
        pids = info["rank_pids"]

        killed_at = time.monotonic()
        os.kill(info["replicas"][1]["rank_pids"][0], signal.SIGKILL)
        assert wait_until(lambda: server.proc.poll() is not None or failed(server), 10)
        assert server.proc.wait(timeout=30) is not None
        assert time.monotonic() - killed_at < 30
        assert wait_until(lambda: not any(alive(p) for p in pids), 5)
        assert "stopping the server" in server.output()
    finally:
        server.stop()


def failed(server: ServerProcess) -> bool:
    """A request answered 503 (or the server already gone)."""
    try:
        r = httpx.post(
            server.base_url + "/generate",
            json={"input_ids": [1, 2, 3], "sampling_params": {"max_new_tokens": 1}},
            timeout=10,
        )
    except httpx.HTTPError:
        return True
    return r.status_code == 503
