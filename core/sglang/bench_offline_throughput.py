"""Offline throughput: every request of a dataset handed to the in-process `sglang.Engine` at
once, timed from submission until the last one finishes. No HTTP, no client-side streaming.

    python -m sglang.bench_offline_throughput --device xeon --dataset-name random \\
        --random-input-len 256 --random-output-len 64 --num-prompts 64 --result-filename out.jsonl

Engine settings are the server's flags (`--model-path`, `--device`, `--dtype`, `--load-format`,
`--max-total-tokens`, ...); without `--model-path` the embedded default model runs. Requests
are greedy with `ignore_eos` (unless --disable-ignore-eos), `max_new_tokens` from the dataset.
Random datasets are sent as token ids, so the engine sees exactly the drawn lengths; input
and output token counts are the engine's own (meta_info). A short warm-up (up to 4 prompts,
16 new tokens each) runs first unless --skip-warmup, then the prefix cache is flushed.

`--backend scheduler` steps the scheduler in this process instead (no frontend process, no
IPC, no detokenization: prompts go in as token ids): the engine's device-side throughput,
and the way one loaded model serves several workloads in one process (`throughput_scheduler`,
used by benchmarks/bench_cuda_llama8b.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

from sglang.benchmark.datasets import DatasetRow, add_dataset_args, describe, get_dataset
from sglang.benchmark.report import append_jsonl, environment, table
from sglang.cli.args import add_cli_args, from_cli

WARMUP_PROMPTS = 4
WARMUP_OUTPUT = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m sglang.bench_offline_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backend", default="engine", choices=["engine", "scheduler"])
    p.add_argument(
        "--result-filename",
        "--output-file",
        dest="result_filename",
        default="",
        help="JSONL file a result line is appended to",
    )
    p.add_argument("--disable-ignore-eos", action="store_true")
    p.add_argument(
        "--extra-request-body",
        default=None,
        help="JSON merged into every request's sampling params",
    )
    p.add_argument("--skip-warmup", action="store_true")
    add_dataset_args(p)
    add_cli_args(p.add_argument_group("server arguments (sglang.ServerArgs)"))
    return p.parse_args(argv)


def _sampling(rows: list[DatasetRow], args: argparse.Namespace, cap: int | None = None):
    extra = json.loads(args.extra_request_body) if args.extra_request_body else {}
    return [
        {
            "temperature": 0.0,
            "max_new_tokens": min(r.output_len, cap) if cap else r.output_len,
            "ignore_eos": not args.disable_ignore_eos,
            **extra,
        }
        for r in rows
    ]


def _generate(engine, rows: list[DatasetRow], params: list[dict]) -> list[dict[str, Any]]:
    if all(r.prompt_ids is not None for r in rows):
        return engine.generate(input_ids=[r.prompt_ids for r in rows], sampling_params=params)
    return engine.generate([r.prompt for r in rows], params)


def throughput(engine, rows: list[DatasetRow], args: argparse.Namespace) -> dict[str, Any]:
    """One timed run of all `rows`; returns SGLang's offline metrics."""
    params = _sampling(rows, args)
    start = time.perf_counter()
    outs = _generate(engine, rows, params)
    duration = time.perf_counter() - start
    ok = [o for o in outs if (o["meta_info"].get("finish_reason") or {}).get("type") != "abort"]
    inputs = sum(o["meta_info"]["prompt_tokens"] for o in ok)
    outputs = sum(o["meta_info"]["completion_tokens"] for o in ok)
    return {
        "successful_requests": len(ok),
        "failed_requests": len(outs) - len(ok),
        "total_latency": duration,
        "total_input_tokens": inputs,
        "total_output_tokens": outputs,
        "request_throughput": len(ok) / duration,
        "input_throughput": inputs / duration,
        "output_throughput": outputs / duration,
        "total_throughput": (inputs + outputs) / duration,
    }


def throughput_scheduler(
    scheduler, rows: list[DatasetRow], args: argparse.Namespace, cap: int | None = None
) -> dict[str, Any]:
    """`throughput` for a Scheduler stepped in this process; rows need prompt_ids."""
    from sglang.sampling.params import SamplingParams
    from sglang.scheduler.req import Req

    params = _sampling(rows, args, cap)
    runtime = scheduler.runner.runtime
    runtime.synchronize()
    start = time.perf_counter()
    done: dict[str, Any] = {}
    for i, (row, p) in enumerate(zip(rows, params)):
        req = Req(
            f"offline-{i}", list(row.prompt_ids), SamplingParams.from_dict(p), scheduler.eos_ids
        )
        out = scheduler.add_request(req)
        if out is not None:
            done[out.rid] = out
    while scheduler.has_work():
        for out in scheduler.step():
            if out.finished is not None:
                done[out.rid] = out
    runtime.synchronize()
    duration = time.perf_counter() - start
    ok = [o for o in done.values() if o.finished.type != "abort"]
    inputs = sum(o.prompt_tokens for o in ok)
    outputs = sum(o.completion_tokens for o in ok)
    return {
        "successful_requests": len(ok),
        "failed_requests": len(rows) - len(ok),
        "total_latency": duration,
        "total_input_tokens": inputs,
        "total_output_tokens": outputs,
        "cached_tokens": sum(o.cached_tokens for o in ok),
        "request_throughput": len(ok) / duration,
        "input_throughput": inputs / duration,
        "output_throughput": outputs / duration,
        "total_throughput": (inputs + outputs) / duration,
    }


def flush_cache(scheduler) -> None:
    from sglang.engine.io import ControlRequest
    from sglang.engine.scheduler_process import control

    if not control(scheduler, ControlRequest("flush_cache", 0)).ok:
        raise RuntimeError("cannot flush the prefix cache: requests are running")


def with_prompt_ids(rows: list[DatasetRow], tokenizer) -> list[DatasetRow]:
    return [
        r
        if r.prompt_ids is not None
        else dataclasses.replace(r, prompt_ids=list(tokenizer.encode(r.prompt)))
        for r in rows
    ]


def main_scheduler(args: argparse.Namespace) -> dict[str, Any]:
    from sglang.bench_one_batch import weightless_source
    from sglang.engine.scheduler_process import build_scheduler
    from sglang.model_loader import default_model_path, load_tokenizer

    server_args = from_cli(args)
    model_path = server_args.model_path or default_model_path()
    tokenizer = load_tokenizer(server_args.tokenizer_path or model_path)
    if server_args.load_format == "dummy":
        model_path = weightless_source(model_path)
    server_args = dataclasses.replace(server_args, model_path=model_path, skip_tokenizer_init=True)
    scheduler, info = build_scheduler(server_args)
    rows = with_prompt_ids(get_dataset(args, tokenizer), tokenizer)
    print(describe(rows))
    if not args.skip_warmup:
        _ = throughput_scheduler(scheduler, rows[:WARMUP_PROMPTS], args, cap=WARMUP_OUTPUT)
        flush_cache(scheduler)
    metrics = throughput_scheduler(scheduler, rows, args)
    print(report(metrics, "scheduler"))
    record = {
        **{k: v for k, v in vars(args).items() if k != "result_filename"},
        **metrics,
        "engine": {
            k: getattr(info, k)
            for k in (
                "backend",
                "device",
                "architecture",
                "dtype",
                "max_total_tokens",
                "max_running_requests",
            )
        },
        **environment(),
    }
    append_jsonl(args.result_filename, record)
    return record


def report(m: dict[str, Any], backend: str) -> str:
    items = [
        ("Backend:", backend),
        ("Successful requests:", m["successful_requests"]),
        ("Benchmark duration (s):", m["total_latency"]),
        ("Total input tokens:", m["total_input_tokens"]),
        ("Total generated tokens:", m["total_output_tokens"]),
        ("Request throughput (req/s):", m["request_throughput"]),
        ("Input token throughput (tok/s):", m["input_throughput"]),
        ("Output token throughput (tok/s):", m["output_throughput"]),
        ("Total token throughput (tok/s):", m["total_throughput"]),
    ]
    if m["failed_requests"]:
        items.insert(2, ("Failed requests:", m["failed_requests"]))
    return table("Offline Throughput Benchmark Result", items)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.backend == "scheduler":
        return main_scheduler(args)
    from sglang.engine.engine import Engine
    from sglang.model_loader import default_model_path, load_tokenizer

    kwargs = dataclasses.asdict(from_cli(args))
    print(f"engine args: {kwargs}")
    engine = Engine(**kwargs)
    try:
        tokenizer = engine.tokenizer or load_tokenizer(
            kwargs.get("tokenizer_path") or kwargs.get("model_path") or default_model_path()
        )
        rows = get_dataset(args, tokenizer)
        if not rows:
            raise SystemExit("the dataset gave no requests (check the filters and --num-prompts)")
        print(describe(rows))
        if not args.skip_warmup:
            warm = rows[:WARMUP_PROMPTS]
            print(f"Warmup with {len(warm)} prompts ...")
            _generate(engine, warm, _sampling(warm, args, cap=WARMUP_OUTPUT))
            engine.flush_cache()
        print(f"Benchmark: {len(rows)} prompts ...")
        metrics = throughput(engine, rows, args)
        stats = engine.get_stats()
        info = engine.server_info
    finally:
        engine.shutdown()
    print(report(metrics, args.backend))
    record = {
        **{k: v for k, v in vars(args).items() if k != "result_filename"},
        **metrics,
        "engine_stats": stats,
        "engine": {
            k: info.get(k)
            for k in (
                "backend",
                "device",
                "architecture",
                "dtype",
                "max_total_tokens",
                "max_running_requests",
            )
        },
        **environment(),
    }
    append_jsonl(args.result_filename, record)
    if args.result_filename:
        print(f"result appended to {args.result_filename}")
    return record


if __name__ == "__main__":
    main()
