"""Two nodes on one machine: `--tp 2 --nnodes 2 --dist-init-addr 127.0.0.1:PORT`, node 0 the
server with rank 0, node 1 (`--node-rank 1`) only rank 1, no HTTP server. A request's greedy
tokens equal transformers' (and so one process's); killing node 1 makes node 0 report the
lost node and exit within 30 s, leaving no rank behind."""

from __future__ import annotations

import os
import socket
import subprocess
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

PROMPT = [1, 17, 33, 250, 99, 7, 41, 5]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def two_free_ports() -> int:
    """A port P with P + 1 free too (the rendezvous, then node 0's link listener)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                    return port
                except OSError:
                    continue
    raise RuntimeError("no two free neighbouring ports")


def test_two_nodes_answer_then_a_lost_node_stops_node_0(model, tmp_path):
    port = two_free_ports()
    common = ["--model-path", model, "--tp", "2", "--nnodes", "2", "--dtype", "float32",
              "--dist-init-addr", f"127.0.0.1:{port}", "--skip-tokenizer-init",
              "--max-total-tokens", "1024", "--context-length", "512"]  # fmt: skip
    log1 = open(tmp_path / "node1.log", "w")
    node1 = subprocess.Popen(
        [sys.executable, "-m", "sglang.launch_server", "--device", "xeon", *common,
         "--node-rank", "1", "--log-level", "info"],
        stdout=log1, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    node0 = None
    try:
        node0 = ServerProcess(*common, "--node-rank", "0")
        r = httpx.post(
            node0.base_url + "/generate",
            json={"input_ids": PROMPT, "sampling_params": {
                "max_new_tokens": 8, "temperature": 0, "ignore_eos": True}},
            timeout=60,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["output_ids"] == hf_greedy(model, PROMPT, 8)
        info = httpx.get(node0.base_url + "/get_server_info", timeout=30).json()
        assert (info["nnodes"], info["parallel"]["ranks"]) == (2, 2)
        pids = info["rank_pids"]  # node 0's: rank 0
        assert len(pids) == 1
        node1_ranks = child_pids(node1.pid)
        assert node1_ranks, "node 1 runs no rank"

        killed_at = time.monotonic()
        node1.kill()
        node1.wait(10)
        assert node0.proc.wait(timeout=30) is not None
        assert time.monotonic() - killed_at < 30
        assert wait_until(lambda: not any(alive(p) for p in pids + node1_ranks), 5)
        out = node0.output()
        assert "node 1 lost (its link to node 0 closed)" in out and "stopping the server" in out
    finally:
        if node0 is not None:
            node0.stop()
        if node1.poll() is None:
            node1.kill()
        log1.close()


def child_pids(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]
