"""Resident memory of `sglang serve` on the default model (or --model-path), once it answers.

    python benchmarks/serve_memory.py [--sglang .venv/bin/sglang] [-- extra serve flags]

Starts the server on a free port, waits for /health, sends one short chat request, then reads
VmRSS of the server process and of its scheduler process (the one that holds the weights and
the KV pool) from /proc, and the scheduler's own accounting from /get_server_info
(weight bytes, KV pool). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from soak_cpu import free_port, rss_mib, scheduler_pid  # noqa: E402


def get(url: str, body: dict | None = None, timeout: float = 60) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sglang", default="sglang", help="the sglang executable")
    parser.add_argument("extra", nargs="*", help="flags passed to `sglang serve`")
    args = parser.parse_args()
    port = free_port()
    cmd = [args.sglang, "serve", "--port", str(port), *args.extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"serve exited: {proc.stderr.read()[-2000:]}")
            try:
                get(f"{base}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        ready = time.perf_counter() - start
        get(
            f"{base}/v1/chat/completions",
            {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16},
        )
        info = get(f"{base}/get_server_info")
        sched = scheduler_pid(proc.pid)
        result = {
            "cmd": " ".join(cmd[:1] + cmd[1:2] + cmd[4:]),
            "ready_s": round(ready, 1),
            "rss_server_mib": round(rss_mib(proc.pid) or 0, 1),
            "rss_scheduler_mib": round(rss_mib(sched) or 0, 1) if sched else None,
            **{
                k: info.get(k)
                for k in (
                    "dtype",
                    "quantization",
                    "weight_bytes",
                    "max_total_num_tokens",
                    "kv_cache_bytes",
                )
                if k in info
            },
        }
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    log = proc.stderr.read().splitlines()
    result["log"] = [ln[-200:] for ln in log if "loaded:" in ln or "KV pool" in ln]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
