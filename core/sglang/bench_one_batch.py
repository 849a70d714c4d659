"""Static-batch latency: one batch of random prompts, prefilled together and decoded in lockstep,
in this process (no server, no HTTP, no tokenizer), for every (batch size, input length,
output length) combination given.

    python -m sglang.bench_one_batch --model-path DIR --load-format dummy --device xeon \\
        --batch-size 1 8 --input-len 128 512 --output-len 16

The scheduler is built in-process (`build_scheduler`) and stepped directly: step 1 prefills
all `batch_size` prompts in one forward (chunking off unless --chunked-prefill-size is given,
then in as many prefill steps as it takes; prefill budget and pool sized to fit) and samples
each request's first token; each later step is one decode forward over the batch.
Requests are greedy with `ignore_eos`, so every one runs to `output_len` tokens.

Reported per combination (SGLang's definitions): prefill latency and throughput
(batch x input_len / latency), median decode step latency and throughput (batch / latency),
total latency and throughput (batch x (input_len + output_len) / total). With
`--load-format dummy` the weights are random and a model directory needs only config.json.
Each combination appends a JSON line to `--result-filename` (default result.jsonl).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import time
from typing import Any

import numpy as np

from sglang.benchmark.report import append_jsonl, environment
from sglang.cli.args import add_cli_args, from_cli
from sglang.server_args import ServerArgs

WARMUP_MAX_OUTPUT = 32
LOGGED_DECODE_STEPS = 5  # the first steps are printed; later ones every --log-decode-step


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m sglang.bench_one_batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run-name", default="before")
    p.add_argument("--batch-size", type=int, nargs="+", default=[1])
    p.add_argument("--input-len", type=int, nargs="+", default=[1024])
    p.add_argument("--output-len", type=int, nargs="+", default=[16])
    p.add_argument("--result-filename", default="result.jsonl")
    p.add_argument(
        "--log-decode-step",
        type=int,
        default=0,
        help="also print every Nth decode step (0: only the first few)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the random prompt ids")
    p.add_argument("--skip-warmup", action="store_true")
    add_cli_args(p.add_argument_group("server arguments (sglang.ServerArgs)"))
    args = p.parse_args(argv)
    for name in ("batch_size", "input_len", "output_len"):
        if min(getattr(args, name)) < 1:
            p.error(f"--{name.replace('_', '-')} values must be >= 1")
    return args


def server_args_for(args: argparse.Namespace) -> ServerArgs:
    """ServerArgs for a static batch: no tokenizer, no prefix cache, no chunking, and room for
    the largest combination in one prefill and in the KV pool (unless set on the command line)."""
    from sglang.model_loader import default_model_path

    sa = from_cli(args)
    model_path = sa.model_path or default_model_path()
    if sa.load_format == "dummy":
        model_path = weightless_source(model_path)
    combos = list(itertools.product(args.batch_size, args.input_len, args.output_len))
    sa = dataclasses.replace(
        sa,
        model_path=model_path,
        skip_tokenizer_init=True,
        disable_radix_cache=True,
        chunked_prefill_size=-1 if sa.chunked_prefill_size is None else sa.chunked_prefill_size,
        max_prefill_tokens=max(sa.max_prefill_tokens, *(b * i for b, i, _ in combos)),
        max_running_requests=max(sa.max_running_requests or 0, *args.batch_size),
        max_total_tokens=sa.max_total_tokens or max(b * (i + o + 1) for b, i, o in combos),
    )
    sa.validate()
    return sa


def weightless_source(path: str):
    """The model source of `path`, accepting a directory that holds only config.json.

    `resolve_source` refuses a directory without weight files; dummy weights need none, so such
    a directory becomes a ModelSource with no weight files (a ModelSource passes through
    `resolve_source` unchanged)."""
    from sglang.model_loader import ModelSource, ModelSourceError, resolve_source

    try:
        return resolve_source(path)
    except ModelSourceError:
        directory = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(os.path.join(directory, "config.json")):
            raise
        return ModelSource(path, directory, "dummy", ())


class StaticBatch:
    """Runs one static batch through a Scheduler, step by step, timing each step. Steps are
    timed one at a time (forward latency, as SGLang's bench_one_batch), so the scheduler runs
    serially: the overlap scheduler would hide one step's host work behind the next. Mixed
    chunked prefill is off too: the batch is prefilled whole, then decoded."""

    def __init__(self, scheduler, seed: int) -> None:
        from sglang.sampling.params import SamplingParams

        scheduler.overlap = False
        scheduler.mixed = False
        self.scheduler = scheduler
        self.runtime = scheduler.runner.runtime
        self.vocab = scheduler.runner.model_config.vocab_size
        self.rng = np.random.default_rng(seed)
        self.params = SamplingParams
        self.runs = 0

    def _sync(self) -> None:
        self.runtime.synchronize()

    def run(self, bs: int, input_len: int, output_len: int, log_every: int) -> dict[str, Any]:
        from sglang.scheduler.req import Req

        s = self.scheduler
        context = s.runner.context_len
        if input_len + output_len > context:
            raise ValueError(
                f"input_len {input_len} + output_len {output_len} exceeds the context length "
                f"{context}"
            )
        self.runs += 1
        ids = self.rng.integers(0, min(10000, self.vocab), size=(bs, input_len)).tolist()
        for i in range(bs):
            params = self.params.from_dict(
                {"max_new_tokens": output_len, "temperature": 0.0, "ignore_eos": True}
            )
            rejected = s.add_request(Req(f"run{self.runs}-{i}", ids[i], params, s.eos_ids))
            if rejected is not None:
                raise RuntimeError(f"request rejected: {rejected.finished.message}")
        prefills, decodes = s.stats.prefill_steps, s.stats.decode_steps
        self._sync()
        start = time.perf_counter()
        s.step()
        while (s.waiting or s.chunked) and s.stats.decode_steps == decodes:
            before = s.stats.prefill_steps  # with --chunked-prefill-size: more prefill steps
            s.step()
            if s.stats.prefill_steps == before:
                break  # nothing admitted: reported below
        self._sync()
        prefill = time.perf_counter() - start
        admitted = len(s.running) if output_len > 1 else bs - len(s.waiting)
        if s.stats.decode_steps != decodes or admitted != bs or s.waiting:
            raise RuntimeError(
                f"the prefill steps admitted {admitted} of {bs} requests; the KV pool "
                f"({s.runner.allocator.total_size} tokens) or --max-running-requests is too "
                "small for this batch"
            )
        if s.stats.prefill_steps > prefills + 1:
            print(f"(prefill in {s.stats.prefill_steps - prefills} chunked steps)", flush=True)
        print(
            f"Prefill. latency: {prefill:6.5f} s, throughput: {bs * input_len / prefill:9.2f} "
            "token/s",
            flush=True,
        )
        decode = []
        for step in range(output_len - 1):
            start = time.perf_counter()
            s.step()
            self._sync()
            decode.append(time.perf_counter() - start)
            if step < LOGGED_DECODE_STEPS or (log_every and step % log_every == 0):
                print(
                    f"Decode {step}. Batch size: {bs}, latency: {decode[-1]:6.5f} s, "
                    f"throughput: {bs / decode[-1]:9.2f} token/s",
                    flush=True,
                )
        if s.has_work():
            raise RuntimeError("requests were still running after output_len steps")
        s.check_idle()
        total = prefill + sum(decode)
        result: dict[str, Any] = {
            "batch_size": bs,
            "input_len": input_len,
            "output_len": output_len,
            "prefill_latency": prefill,
            "prefill_throughput": bs * input_len / prefill,
            "total_latency": total,
            "overall_throughput": bs * (input_len + output_len) / total,
        }
        if decode:
            median = statistics.median(decode)
            result.update(
                median_decode_latency=median,
                median_decode_throughput=bs / median,
                decode_latencies=decode,
            )
            print(
                f"Decode.  median latency: {median:6.5f} s, median throughput: "
                f"{bs / median:9.2f} token/s",
                flush=True,
            )
        print(
            f"Total. latency: {total:6.3f} s, throughput: "
            f"{result['overall_throughput']:9.2f} token/s",
            flush=True,
        )
        return result


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    from sglang.engine.scheduler_process import build_scheduler

    server_args = server_args_for(args)
    scheduler, info = build_scheduler(server_args)
    print(
        f"model {info.architecture} ({server_args.load_format}, {info.dtype}) on "
        f"{info.backend} / {info.device}: max_total_num_tokens={info.max_total_tokens}, "
        f"context_len={info.context_len}",
        flush=True,
    )
    bench = StaticBatch(scheduler, args.seed)
    if not args.skip_warmup:
        print("Warmup ...", flush=True)
        bench.run(
            args.batch_size[0],
            args.input_len[0],
            min(WARMUP_MAX_OUTPUT, args.output_len[0]),
            args.log_decode_step,
        )
    print("Benchmark ...", flush=True)
    results = []
    for bs, il, ol in itertools.product(args.batch_size, args.input_len, args.output_len):
        print(f"--- batch_size={bs} input_len={il} output_len={ol}", flush=True)
        result = {
            "run_name": args.run_name,
            **bench.run(bs, il, ol, args.log_decode_step),
            "model_path": getattr(server_args.model_path, "path", server_args.model_path),
            "load_format": server_args.load_format,
            "backend": info.backend,
            "device": info.device,
            "dtype": info.dtype,
            **environment(),
        }
        append_jsonl(args.result_filename, result)
        results.append(result)
    return results


if __name__ == "__main__":
    main()
