"""TTFT of a short prompt through the HTTP server, split into where the time goes (issue 20).

    python benchmarks/ttft_overhead.py --model-path DIR [--input-len 16] [--num-prompts 30] \\
        [--bench-serving] -- --device cuda --load-format dummy --dtype bfloat16
    python benchmarks/ttft_overhead.py --tiny /tmp/tiny-llama -- --device xeon   # on a CPU

1. Starts `python -m sglang.launch_server --model-path DIR <flags after -->` with
   SGLANG_REQUEST_TRACE (sglang/benchmark/request_trace.py), then sends `--num-prompts` streaming
   /generate requests of random ids, one at a time (as `bench_serving --max-concurrency 1`),
   after a few warm-ups. Each request's client times (sent, headers, first chunk) and the
   server processes' trace lines make one timeline: the median of each segment is printed.
   With --bench-serving, `python -m sglang.bench_serving --dataset-name random-ids
   --random-input-len N --random-output-len M --num-prompts K --max-concurrency 1` also runs
   against the same server (its TTFT lines are printed).
2. Stops the server and builds the same scheduler in this process (`build_scheduler`, same
   flags), then times, for fresh prompts of the same length: the scheduler's prefill step
   (admission, batch, forward, sampling, outputs; it ends with the sampled ids on the host)
   and the forward alone (synchronized before and after).

The serving overhead is TTFT minus the in-process forward. --tiny DIR writes a tiny random
Llama (2 layers, hidden 64) with the default model's tokenizer to DIR and uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

# The timeline, in request order; each segment is measured from the event before it.
EVENTS = [
    ("client_send", "client: request sent"),
    ("asgi_in", "HTTP parsed, ASGI app entered"),
    ("route_in", "/generate route entered"),
    # body read, params checked; the request is sent before the response is made (route_out)
    ("tm_send", "body and params checked, request sent to the scheduler"),
    ("sched_recv", "scheduler: request received"),
    ("prefill_forward", "scheduler: admitted, batch built"),
    ("prefill_launched", "forward (launched, on an async device)"),
    ("prefill_sampled", "sampled, ids on the host"),
    ("sched_send", "outputs pickled, sent"),
    ("tm_recv", "tokenizer manager: outputs received"),
    ("tm_chunk", "detokenized, result chunk made"),
    ("sse_chunk", "SSE line made"),
    ("client_first", "client: first chunk read"),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model-path", default=None)
    p.add_argument("--tiny", default=None, help="write a tiny random Llama here and use it")
    p.add_argument("--input-len", type=int, default=16)
    p.add_argument("--output-len", type=int, default=16)
    p.add_argument("--num-prompts", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--port", type=int, default=31999)
    p.add_argument("--bench-serving", action="store_true", help="also run sglang.bench_serving")
    p.add_argument("--skip-in-process", action="store_true")
    p.add_argument("server_flags", nargs="*", help="flags for the server (after --)")
    args = p.parse_args(argv)
    if (args.model_path is None) == (args.tiny is None):
        p.error("give exactly one of --model-path and --tiny")
    return args


def write_tiny_llama(directory: str) -> str:
    import torch
    import transformers as tf
    from sglang.model_loader import default_model_path, load_tokenizer

    if os.path.isfile(os.path.join(directory, "config.json")):
        return directory
    tok = load_tokenizer(default_model_path())
    tok.save_pretrained(directory)
    config = tf.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    tf.LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def start_server(model: str, flags: list[str], port: int, trace_dir: str) -> subprocess.Popen:
    env = {**os.environ, "SGLANG_REQUEST_TRACE": trace_dir}
    cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", model]
    cmd += ["--port", str(port), *flags]
    log = open(os.path.join(trace_dir, "server.log"), "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: see {log.name}")
        try:
            get(f"http://127.0.0.1:{port}/health")
            return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not become healthy")


async def client(port: int, prompts: list[list[int]], output_len: int) -> list[dict]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/generate"
    times = []
    async with aiohttp.ClientSession() as session:
        for ids in prompts:
            payload = {
                "input_ids": ids,
                "sampling_params": {
                    "temperature": 0.0,
                    "max_new_tokens": output_len,
                    "ignore_eos": True,
                },
                "stream": True,
            }
            t = {"client_send": time.monotonic_ns()}
            async with session.post(url, json=payload) as response:
                t["client_headers"] = time.monotonic_ns()
                async for raw in response.content:
                    if raw.startswith(b"data:") and b"[DONE]" not in raw:
                        t.setdefault("client_first", time.monotonic_ns())
                t["client_done"] = time.monotonic_ns()
            times.append(t)
    return times


def read_trace(trace_dir: str) -> list[tuple[int, str]]:
    lines = []
    for name in os.listdir(trace_dir):
        if name.endswith(".trace"):
            with open(os.path.join(trace_dir, name)) as f:
                lines += [(int(ns), ev) for ns, ev in (line.split() for line in f if line.strip())]
    return sorted(lines)


def timelines(requests: list[dict], trace: list[tuple[int, str]]) -> list[dict]:
    """Per request: the events up to the sampling, each the first after the one before it
    (from the client's send), and the events after it, each the last before the one after it
    (back from the client's first chunk), so later chunks' events never count."""
    names = [name for name, _ in EVENTS]
    split = names.index("prefill_sampled") + 1
    out = []
    for t in requests:
        inside = [(ns, ev) for ns, ev in trace if t["client_send"] <= ns <= t["client_first"]]
        line, now = {"client_send": t["client_send"]}, t["client_send"]
        for name in names[1:split]:
            hit = next((ns for ns, ev in inside if ev == name and ns >= now), None)
            if hit is not None:
                line[name] = now = hit
        line["client_first"] = now = t["client_first"]
        for name in reversed(names[split:-1]):
            hit = next((ns for ns, ev in reversed(inside) if ev == name and ns <= now), None)
            if hit is not None:
                line[name] = now = hit
        out.append(line)
    return out


def report_http(lines: list[dict]) -> float:
    print(f"\nHTTP path, median over {len(lines)} requests (ms):")
    print(f"  {'segment':<54}{'median':>8}{'p90':>8}{'cumul.':>8}")
    cumul, prev = 0.0, "client_send"
    for name, label in EVENTS[1:]:
        deltas = [(ln[name] - ln[prev]) / 1e6 for ln in lines if name in ln and prev in ln]
        if not deltas:
            continue
        med = statistics.median(deltas)
        p90 = sorted(deltas)[int(0.9 * (len(deltas) - 1))]
        cumul += med
        print(f"  {label:<54}{med:8.3f}{p90:8.3f}{cumul:8.3f}")
        prev = name
    ttft = statistics.median((ln["client_first"] - ln["client_send"]) / 1e6 for ln in lines)
    print(f"  {'TTFT (client: sent -> first chunk)':<54}{ttft:8.3f}")
    return ttft


def run_bench_serving(args, model: str) -> None:
    cmd = [sys.executable, "-m", "sglang.bench_serving", "--backend", "sglang"]
    cmd += ["--port", str(args.port), "--tokenizer", model, "--disable-tqdm"]
    cmd += ["--dataset-name", "random-ids", "--random-input-len", str(args.input_len)]
    cmd += ["--random-output-len", str(args.output_len), "--num-prompts", str(args.num_prompts)]
    cmd += ["--max-concurrency", "1", "--output-file", os.devnull]
    print("\n$ " + " ".join(cmd[1:]))
    res = subprocess.run(cmd, capture_output=True, text=True)
    for line in res.stdout.splitlines():
        if "TTFT" in line or "TPOT" in line or "Successful" in line:
            print("  " + line)
    if res.returncode:
        print(res.stderr[-2000:])


def in_process(args, model: str) -> tuple[float, float]:
    from sglang.bench_one_batch import weightless_source
    from sglang.cli.args import add_cli_args, from_cli
    from sglang.engine.scheduler_process import build_scheduler
    from sglang.sampling.params import SamplingParams
    from sglang.scheduler.req import Req

    parser = argparse.ArgumentParser()
    add_cli_args(parser)
    sa = from_cli(parser.parse_args(["--model-path", model, *args.server_flags]))
    if sa.load_format == "dummy":
        sa = dataclasses.replace(sa, model_path=weightless_source(sa.model_path))
    scheduler, info = build_scheduler(sa)
    runtime, runner = scheduler.runner.runtime, scheduler.runner
    vocab = min(info.vocab_size, 10000)
    import random

    rng = random.Random(1)
    forward_times: list[float] = []
    plain_forward = runner.forward

    def timed_forward(batch):
        runtime.synchronize()
        start = time.perf_counter()
        logits = plain_forward(batch)
        runtime.synchronize()
        forward_times.append(time.perf_counter() - start)
        return logits

    def first_token(n: int) -> float:
        prompt = [rng.randrange(3, vocab) for _ in range(args.input_len)]
        params = SamplingParams.from_dict(
            {"max_new_tokens": args.output_len, "temperature": 0.0, "ignore_eos": True}
        )
        scheduler.add_request(Req(f"p{n}", prompt, params, scheduler.eos_ids))
        runtime.synchronize()
        start = time.perf_counter()
        outputs = scheduler.step()
        elapsed = time.perf_counter() - start
        assert outputs and outputs[0].new_token_ids, "the prefill step emits the first token"
        runner.forward = plain_forward
        while scheduler.has_work():
            scheduler.step()
        return elapsed

    n = 0
    steps, forwards = [], []
    for _ in range(args.warmup):
        first_token(n := n + 1)
    for _ in range(args.num_prompts):
        steps.append(first_token(n := n + 1))
    for _ in range(args.num_prompts):
        runner.forward = timed_forward
        forward_times.clear()
        first_token(n := n + 1)
        forwards.append(forward_times[0])
    step, forward = statistics.median(steps) * 1e3, statistics.median(forwards) * 1e3
    print(f"\nIn process ({info.backend}, {info.dtype}), median over {args.num_prompts} prompts:")
    print(f"  {'prefill step (forward + sampling + outputs)':<54}{step:8.3f}")
    print(f"  {'forward alone (synchronized)':<54}{forward:8.3f}")
    return step, forward


def main(argv=None) -> None:
    args = parse_args(argv)
    model = write_tiny_llama(args.tiny) if args.tiny else args.model_path
    trace_dir = tempfile.mkdtemp(prefix="ttft-trace-")
    proc = start_server(model, args.server_flags, args.port, trace_dir)
    try:
        info = json.loads(get(f"http://127.0.0.1:{args.port}/get_server_info"))
        vocab = min(info["vocab_size"], 10000)
        import random

        rng = random.Random(0)
        n = args.warmup + args.num_prompts
        prompts = [[rng.randrange(3, vocab) for _ in range(args.input_len)] for _ in range(n)]
        times = asyncio.run(client(args.port, prompts, args.output_len))[args.warmup :]
        with open(os.path.join(trace_dir, "client.json"), "w") as f:
            json.dump(times, f)
        ttft = report_http(timelines(times, read_trace(trace_dir)))
        if args.bench_serving:
            run_bench_serving(args, model)
    finally:
        proc.terminate()
        proc.wait(60)
    print(f"(trace lines and server log in {trace_dir})")
    if not args.skip_in_process:
        step, forward = in_process(args, model)
        print(
            f"\nserving overhead = TTFT - forward = {ttft:.3f} - {forward:.3f} = "
            f"{ttft - forward:.3f} ms (TTFT - prefill step = {ttft - step:.3f} ms)"
        )


if __name__ == "__main__":
    main()
