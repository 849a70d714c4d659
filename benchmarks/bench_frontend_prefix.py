"""Frontend-language prefix reuse: a batch of programs sharing a ~500-token few-shot prompt,
on a server with the radix cache and on one started with --disable-radix-cache.

    python benchmarks/bench_frontend_prefix.py [--num-programs 32] [--repeat 3] [--json out.json]
    python benchmarks/bench_frontend_prefix.py --url http://127.0.0.1:30000   # one server only

Workload: `classify` from examples/frontend/few_shot_classification.py (the few-shot prompt,
then "Review: <text>\\nSentiment:" and a select over " positive"/" negative"), run with
run_batch over `--num-programs` distinct reviews, `--num-threads` at a time. Both servers are
started on the default model (xeon backend) and warmed up with one program; the repeats then
alternate between them (so that load from elsewhere on the machine falls on both alike), each
flushing the cache and timing the batch (wall clock, run_batch call to its last result).

Reported per server: median wall time; the cache fraction of the shared prefix (cached tokens
of each program's first request / the prefix's tokens, minimum over all programs but the first,
as the issue states it); and cached / prompt tokens over all the batch's requests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "frontend"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *flags: str, timeout: float = 600):
        self.url = f"http://127.0.0.1:{free_port()}"
        cmd = [sys.executable, "-m", "sglang.launch_server", "--port", self.url.rsplit(":", 1)[1]]
        cmd += ["--device", "xeon", "--log-level", "warning", "--max-total-tokens", "32768"]
        self.flags = list(flags)
        self.proc = subprocess.Popen([*cmd, *flags], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Workload:
    """The batch on one server: warmed up once, then timed run by run."""

    def __init__(self, url: str, args: argparse.Namespace):
        import sglang as sgl
        from few_shot_classification import FEW_SHOT, TEST_REVIEWS, classify

        self.backend, self.program = sgl.RuntimeEndpoint(url), classify
        self.num_threads = args.num_threads
        self.prefix_tokens = len(self.backend._tokenize([FEW_SHOT], True)[0])
        self.reviews = [
            {"review": f"{TEST_REVIEWS[i % len(TEST_REVIEWS)][0]} (#{i})"}
            for i in range(args.num_programs)
        ]
        classify.run(review="A warm-up review.", backend=self.backend)
        self.walls: list[float] = []
        self.fractions: list[float] = []
        self.totals: list[float] = []

    def run_once(self) -> None:
        self.backend.flush_cache()
        start = time.perf_counter()
        states = self.program.run_batch(
            self.reviews, backend=self.backend, num_threads=self.num_threads
        )
        self.walls.append(time.perf_counter() - start)
        errors = [s.error() for s in states if s.error() is not None]
        if errors:
            raise RuntimeError(f"{len(errors)} programs failed: {errors[0]}")
        first = [s.requests[0].cached_tokens / self.prefix_tokens for s in states]
        self.fractions.append(min(first[1:]))
        prompt = sum(s.prompt_tokens for s in states)
        self.totals.append(sum(s.cached_tokens for s in states) / prompt)

    def summary(self) -> dict:
        return {
            "prefix_tokens": self.prefix_tokens,
            "wall_s": self.walls,
            "median_wall_s": statistics.median(self.walls),
            "min_prefix_cache_fraction": min(self.fractions),
            "cached_over_prompt": statistics.median(self.totals),
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="benchmark this running server only")
    p.add_argument("--num-programs", type=int, default=32)
    p.add_argument("--num-threads", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    info = {
        "commit": commit,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_at_start": os.getloadavg(),
        "num_programs": args.num_programs,
        "num_threads": args.num_threads,
    }
    servers: list[Server] = []
    try:
        if args.url:
            workloads = {"given server": Workload(args.url, args)}
        else:  # both up at once (an idle server takes no CPU); repeats alternate between them
            servers = [Server(), Server("--disable-radix-cache")]
            workloads = {
                "radix cache": Workload(servers[0].url, args),
                "--disable-radix-cache": Workload(servers[1].url, args),
            }
        for _ in range(args.repeat):
            for workload in workloads.values():
                workload.run_once()
    finally:
        for server in servers:
            server.stop()
    results = {name: w.summary() for name, w in workloads.items()}
    print(json.dumps(info))
    print(
        "| server | prefix tokens | median wall s (runs) | min prefix cache fraction | "
        "cached/prompt |"
    )
    print("|---|---|---|---|---|")
    for name, r in results.items():
        runs = ", ".join(f"{w:.1f}" for w in r["wall_s"])
        print(
            f"| {name} | {r['prefix_tokens']} | {r['median_wall_s']:.1f} ({runs}) | "
            f"{r['min_prefix_cache_fraction']:.1%} | {r['cached_over_prompt']:.1%} |"
        )
    if len(results) == 2:
        a, b = results.values()
        print(f"speed-up with the radix cache: {b['median_wall_s'] / a['median_wall_s']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**info, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
