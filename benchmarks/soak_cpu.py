"""Soak test of a real server on the CPU: mixed traffic for a fixed time, then the books.

    python benchmarks/soak_cpu.py [--minutes 10] [--workers 6] [--max-total-tokens 2048]
        [--seed 0] [--json out.json] [-- extra server flags]

It starts `python -m sglang.launch_server` on the default model (SmolLM2-135M-Instruct) with a
small KV pool (--max-total-tokens), so that bursts exhaust it and the scheduler queues and
retracts, and sends, from `--workers` concurrent clients (seeded):
  streaming and non-streaming requests on /generate, /v1/completions and /v1/chat/completions;
  streams the client abandons after a few chunks (disconnect mid-stream); non-streaming requests
  the client gives up on after a moment (disconnect while queued or decoding); streams aborted
  with /abort_request; requests the server must refuse (400); and, `--burst-every` s after the
  previous one has finished, a burst of long requests that together overflow the KV pool.
Every request ends in one of: completed (its whole answer), aborted (the client left, or
/abort_request ended it with finish_reason abort), refused (the 400 it was meant to get), errored
(any other status, or a stream cut without an end) or lost (no answer within --deadline s). Lost
must be 0. Every --sample-every s it records the scheduler's counters from /get_server_info and
the resident memory of the server and scheduler processes; at the end, once idle, the KV slots
free vs total (free + cached by the prefix cache must be all of them; all free after
/flush_cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from sglang.backend.runtime import CpuRuntime
from sglang.benchmark.report import git_commit

PARAGRAPH = (
    "The lighthouse keeper climbed the spiral stairs every evening, counting the steps, "
    "checking the lamp, the lens and the log book, and watching the weather roll in from the "
    "west while the gulls settled on the rocks below. "
)
QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "Explain what a lighthouse does in one sentence.",
    "Tell me a short story about a cat.",
]


@dataclass
class Books:
    sent: Counter = field(default_factory=Counter)  # by kind
    outcome: Counter = field(default_factory=Counter)  # by outcome
    lost: list = field(default_factory=list)  # (kind, detail) of every lost request
    errors: Counter = field(default_factory=Counter)  # "kind: detail" of errored ones

    def end(self, kind: str, outcome: str, detail: str = "") -> None:
        self.outcome[outcome] += 1
        if outcome == "lost":
            self.lost.append((kind, detail))
        elif outcome == "errored":
            self.errors[f"{kind}: {detail[:120]}"] += 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def scheduler_pid(server_pid: int) -> int | None:
    """The server's spawned child that runs the scheduler (not multiprocessing's tracker)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == server_pid and b"spawn_main" in cmd:
            return int(entry)
    return None


def start_server(args, port: int, log_path: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "sglang.launch_server",
        "--port",
        str(port),
        "--device",
        "xeon",
        "--max-total-tokens",
        str(args.max_total_tokens),
        "--max-running-requests",
        str(args.max_running_requests),
        "--enable-metrics",
        "--log-level",
        "warning",
        *args.server_args,
    ]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise SystemExit(f"the server did not start in 600 s; see {log_path}")


class Traffic:
    def __init__(self, url: str, args, books: Books) -> None:
        self.url, self.args, self.books = url, args, books
        self.client = httpx.AsyncClient(base_url=url, timeout=None)

    def prompt(self, rng: random.Random, long: bool = False) -> str:
        repeat = rng.randint(6, 10) if long else rng.randint(0, 3)
        return PARAGRAPH * repeat + rng.choice(QUESTIONS)

    async def one(self, kind: str, rng: random.Random) -> None:
        """One request of `kind`, booked under exactly one outcome."""
        self.books.sent[kind] += 1
        try:
            outcome, detail = await asyncio.wait_for(
                getattr(self, "do_" + kind)(rng), self.args.deadline
            )
        except asyncio.TimeoutError:
            outcome, detail = "lost", f"no answer within {self.args.deadline} s"
        except (httpx.HTTPError, ValueError, KeyError) as e:  # transport, or a malformed answer
            outcome, detail = "errored", f"{type(e).__name__}: {e}"
        self.books.end(kind, outcome, detail)

    # --- the kinds of request ---------------------------------------------------------------
    async def do_generate(self, rng, stream=False, long=False, tokens=None):
        body = {
            "text": self.prompt(rng, long),
            "sampling_params": {
                "max_new_tokens": tokens or rng.randint(8, 64),
                "temperature": rng.choice([0, 0.7]),
            },
            "stream": stream,
        }
        if long:
            body["sampling_params"]["ignore_eos"] = True
        if not stream:
            r = await self.client.post("/generate", json=body)
            return judge_json(r, lambda j: j["meta_info"]["finish_reason"])
        return await self.read_stream("/generate", body, finish_of_native)

    async def do_generate_stream(self, rng):
        return await self.do_generate(rng, stream=True)

    async def do_long(self, rng):
        return await self.do_generate(rng, long=True, tokens=rng.randint(100, 200))

    async def do_completion(self, rng, stream=False):
        body = {
            "prompt": self.prompt(rng),
            "max_tokens": rng.randint(8, 64),
            "stream": stream,
            "temperature": rng.choice([0, 0.7]),
        }
        if not stream:
            r = await self.client.post("/v1/completions", json=body)
            return judge_json(r, lambda j: j["choices"][0]["finish_reason"])
        return await self.read_stream("/v1/completions", body, finish_of_openai)

    async def do_completion_stream(self, rng):
        return await self.do_completion(rng, stream=True)

    async def do_chat(self, rng, stream=False):
        body = {
            "messages": [{"role": "user", "content": self.prompt(rng)}],
            "max_tokens": rng.randint(8, 64),
            "temperature": rng.choice([0, 0.7]),
            "stream": stream,
        }
        if rng.random() < 0.3:
            body["n"] = 2
        if not stream:
            r = await self.client.post("/v1/chat/completions", json=body)
            return judge_json(r, lambda j: j["choices"][-1]["finish_reason"])
        return await self.read_stream("/v1/chat/completions", body, finish_of_openai)

    async def do_chat_stream(self, rng):
        return await self.do_chat(rng, stream=True)

    async def do_disconnect_stream(self, rng):
        """Read a few chunks of a long stream, then close the connection."""
        body = {"prompt": self.prompt(rng), "max_tokens": 200, "ignore_eos": True, "stream": True}
        keep = rng.randint(1, 5)
        async with self.client.stream("POST", "/v1/completions", json=body) as r:
            if r.status_code != 200:
                return "errored", f"status {r.status_code}"
            seen = 0
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    seen += 1
                    if seen >= keep:
                        break
        return "aborted", ""

    async def do_disconnect_wait(self, rng):
        """Give up on a non-streaming request after a moment (queued, prefilling or decoding)."""
        body = {
            "messages": [{"role": "user", "content": self.prompt(rng)}],
            "max_tokens": 200,
            "ignore_eos": True,
        }
        try:
            r = await asyncio.wait_for(
                self.client.post("/v1/chat/completions", json=body), rng.uniform(0.2, 3.0)
            )
        except asyncio.TimeoutError:
            return "aborted", ""
        return judge_json(r, lambda j: j["choices"][0]["finish_reason"])

    async def do_abort_request(self, rng):
        """A stream with a known rid, ended by /abort_request after its first chunk."""
        rid = f"soak-{rng.getrandbits(64):016x}"
        body = {
            "text": self.prompt(rng),
            "rid": rid,
            "stream": True,
            "sampling_params": {"max_new_tokens": 200, "ignore_eos": True},
        }
        finish = None
        async with self.client.stream("POST", "/generate", json=body) as r:
            if r.status_code != 200:
                return "errored", f"status {r.status_code}"
            aborted = False
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                finish = finish_of_native(chunk) or finish
                if not aborted:
                    resp = await self.client.post("/abort_request", json={"rid": rid})
                    if resp.status_code != 200:
                        return "errored", f"/abort_request {resp.status_code}"
                    aborted = True
        if finish is None:
            return "errored", "the aborted stream ended without a finish reason"
        return ("aborted" if finish == "abort" else "completed"), ""

    async def do_refused(self, rng):
        body = rng.choice(
            [
                {"text": "hi", "sampling_params": {"temperature": -1}},
                {"text": "hi", "sampling_params": {"logit_bias": [1]}},
                {"prompt": "hi", "n": 10**6},
            ]
        )
        path = "/v1/completions" if "prompt" in body else "/generate"
        r = await self.client.post(path, json=body)
        return ("refused", "") if r.status_code == 400 else ("errored", f"status {r.status_code}")

    async def read_stream(self, path, body, finish_of):
        finish, done = None, False
        async with self.client.stream("POST", path, json=body) as r:
            if r.status_code != 200:
                return "errored", f"status {r.status_code}: {(await r.aread())[:200]!r}"
            async for line in r.aiter_lines():
                if line == "data: [DONE]":
                    done = True
                elif line.startswith("data: "):
                    finish = finish_of(json.loads(line[6:])) or finish
        if done and finish is not None:
            return "completed", ""
        return "errored", f"stream ended (done={done}, finish={finish})"


def finish_of_native(chunk: dict):
    reason = chunk.get("meta_info", {}).get("finish_reason")
    return reason and reason.get("type")


def finish_of_openai(chunk: dict):
    choices = chunk.get("choices") or [{}]
    return choices[0].get("finish_reason")


def judge_json(r: httpx.Response, finish_of) -> tuple[str, str]:
    if r.status_code != 200:
        return "errored", f"status {r.status_code}: {r.text[:200]}"
    finish = finish_of(r.json())
    return ("completed", "") if finish else ("errored", "no finish reason")


MIX = {  # kind -> weight
    "generate": 3,
    "generate_stream": 3,
    "completion": 2,
    "completion_stream": 2,
    "chat": 2,
    "chat_stream": 2,
    "disconnect_stream": 2,
    "disconnect_wait": 2,
    "abort_request": 2,
    "refused": 1,
    "long": 1,
}


async def worker(traffic: Traffic, rng: random.Random, stop_at: float) -> None:
    kinds, weights = zip(*MIX.items())
    while time.monotonic() < stop_at:
        await traffic.one(rng.choices(kinds, weights)[0], rng)


async def bursts(traffic: Traffic, rng: random.Random, stop_at: float, every: float, size: int):
    """`size` long requests at once, `every` s after the last burst finished: more than the
    KV pool holds."""
    while time.monotonic() + every < stop_at:
        await asyncio.sleep(every)
        await asyncio.gather(
            *(traffic.one("long", random.Random(rng.random())) for _ in range(size))
        )


async def sampler(url: str, pids: dict[str, int], samples: list, stop_at: float, every: float):
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        start = time.monotonic()
        while True:
            samples.append(await sample(client, pids, time.monotonic() - start))
            if time.monotonic() + every > stop_at:
                return
            await asyncio.sleep(every)


async def sample(client: httpx.AsyncClient, pids: dict[str, int], t: float) -> dict:
    stats = (await client.get("/get_server_info")).json()["scheduler"]
    return {
        "t_s": round(t, 1),
        **{f"rss_{name}_mib": rss_mib(pid) for name, pid in pids.items()},
        **{
            k: stats[k]
            for k in (
                "running",
                "waiting",
                "kv_free",
                "kv_cached",
                "kv_total",
                "retractions",
                "generated_tokens",
            )
        },
    }


async def soak(url: str, pids: dict[str, int], args) -> dict:
    books, samples = Books(), []
    traffic = Traffic(url, args, books)
    rng = random.Random(args.seed)
    # warm-up, so the memory baseline is the loaded, compiled server
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        for _ in range(2):
            await c.post(
                "/generate", json={"text": "Hello", "sampling_params": {"max_new_tokens": 8}}
            )
        baseline = await sample(c, pids, 0.0)
    stop_at = time.monotonic() + args.minutes * 60
    tasks = [worker(traffic, random.Random(rng.random()), stop_at) for _ in range(args.workers)]
    tasks.append(
        bursts(traffic, random.Random(rng.random()), stop_at, args.burst_every, args.burst_size)
    )
    tasks.append(sampler(url, pids, samples, stop_at, args.sample_every))
    t0 = time.monotonic()
    await asyncio.gather(*tasks)
    wall = time.monotonic() - t0
    await traffic.client.aclose()
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        idle_deadline = time.monotonic() + 60
        while time.monotonic() < idle_deadline:
            idle = await sample(c, pids, time.monotonic() - t0)
            if idle["running"] == idle["waiting"] == 0:
                break
            await asyncio.sleep(1)
        flushed = (await c.post("/flush_cache")).status_code
        after_flush = await sample(c, pids, time.monotonic() - t0)
        health = (await c.get("/health")).status_code
    return {
        "wall_s": round(wall, 1),
        "sent": sum(books.sent.values()),
        "sent_by_kind": dict(books.sent),
        "outcomes": dict(books.outcome),
        "lost": books.lost,
        "errors": dict(books.errors),
        "baseline": baseline,
        "samples": samples,
        "idle": idle,
        "flush_status": flushed,
        "after_flush": after_flush,
        "health_after": health,
    }


def report(result: dict, args) -> None:
    o = result["outcomes"]
    ends = ("completed", "aborted", "refused", "errored", "lost")
    counts = ", ".join(f"{k} {o.get(k, 0)}" for k in ends)
    print(f"\n{result['sent']} requests in {result['wall_s']} s: {counts}")
    print("sent by kind:", json.dumps(result["sent_by_kind"]))
    for detail, n in result["errors"].items():
        print(f"  errored x{n}: {detail}")
    for kind, detail in result["lost"]:
        print(f"  LOST: {kind}: {detail}")
    print(
        f"\n{'t (s)':>7} {'server MiB':>10} {'sched MiB':>10} {'run':>4} {'wait':>4} "
        f"{'kv free':>8} {'cached':>7} {'retract':>7}"
    )
    for s in [result["baseline"], *result["samples"], result["idle"], result["after_flush"]]:
        rss = f"{s['rss_server_mib'] or 0:>10.0f} {s['rss_scheduler_mib'] or 0:>10.0f}"
        print(
            f"{s['t_s']:>7} {rss}"
            f" {s['running']:>4} {s['waiting']:>4} {s['kv_free']:>8} {s['kv_cached']:>7}"
            f" {s['retractions']:>7}"
        )
    idle, flushed, base = result["idle"], result["after_flush"], result["baseline"]
    print(
        f"\nidle: kv free {idle['kv_free']} + cached {idle['kv_cached']} of {idle['kv_total']};"
        f" after /flush_cache ({result['flush_status']}): free {flushed['kv_free']} of "
        f"{flushed['kv_total']}; /health {result['health_after']}"
    )
    for name in ("server", "scheduler"):
        a, b = base[f"rss_{name}_mib"], flushed[f"rss_{name}_mib"]
        if a and b:
            print(
                f"RSS {name}: {a:.0f} MiB after warm-up -> {b:.0f} MiB at the end "
                f"({b - a:+.0f} MiB)"
            )
    print(
        f"commit {result['commit']}, {result['machine']}, load average (1/5/15 min) "
        f"{result['load_average_start']} at the start, {result['load_average_end']} at the end"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--max-total-tokens", type=int, default=2048)
    p.add_argument("--max-running-requests", type=int, default=16)
    p.add_argument("--burst-every", type=float, default=60)
    p.add_argument("--burst-size", type=int, default=8)
    p.add_argument("--sample-every", type=float, default=30)
    p.add_argument("--deadline", type=float, default=300, help="s before a request is lost")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the result here")
    p.add_argument("server_args", nargs="*", help="extra server flags, after --")
    args = p.parse_args()
    load_start, commit = os.getloadavg(), git_commit()  # the code the server runs
    port = free_port()
    log_path = f"/tmp/sglang-soak-{port}.log"
    t0 = time.monotonic()
    proc = start_server(args, port, log_path)
    print(f"server up in {time.monotonic() - t0:.0f} s (log {log_path})")
    pids = {"server": proc.pid, "scheduler": scheduler_pid(proc.pid)}
    try:
        result = asyncio.run(soak(f"http://127.0.0.1:{port}", pids, args))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    result.update(
        load_average_start=load_start,
        load_average_end=os.getloadavg(),
        commit=commit,
        machine=f"{CpuRuntime(0).device_name()}, {os.cpu_count()} CPUs",
        args=vars(args),
    )
    report(result, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if result["outcomes"].get("lost") or result["health_after"] != 200:
        sys.exit(1)


if __name__ == "__main__":
    main()
