"""Online serving benchmark against a running server, with SGLang's flags, metrics and report.

    python -m sglang.bench_serving --backend sglang --num-prompts 200
    python -m sglang.bench_serving --backend openai --base-url http://127.0.0.1:8000 \\
        --dataset-name random --random-input-len 256 --random-output-len 64 \\
        --request-rate 4 --max-concurrency 16 --output-file results.jsonl

Requests go out in dataset order: all at t=0 with `--request-rate inf` (the default), else
with exponential gaps (a Poisson process of that rate); `--max-concurrency` caps how many are
in flight. Warm-up requests (the first prompt, at most 32 output tokens) run before the clock
starts. The result is printed and appended as one JSON line to `--output-file` (default
`<backend>_<MMDD>_<num_prompts>_<random_input_len>_<random_output_len>.jsonl`, as SGLang names
it). Metric definitions: `sglang.benchmark.metrics`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import math
import os
import sys
import time
from typing import Any

import numpy as np

from sglang.benchmark.clients import BACKENDS, RequestInput, make_session, served_model
from sglang.benchmark.datasets import DatasetRow, add_dataset_args, describe, get_dataset
from sglang.benchmark.metrics import RequestOutput, calculate_metrics
from sglang.benchmark.report import append_jsonl, environment, serving_report

DEFAULT_PORT = 30000
WARMUP_MAX_OUTPUT = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m sglang.bench_serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backend", default="sglang", choices=sorted(BACKENDS))
    p.add_argument("--base-url", default=None, help="server root, e.g. http://127.0.0.1:30000")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument(
        "--model",
        default=None,
        help="model name sent to OpenAI APIs (default: the server's first model)",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="tokenizer path or model path (default: --model if it is a local path, "
        "else the embedded default model's tokenizer)",
    )
    add_dataset_args(p)
    p.add_argument(
        "--request-rate",
        type=float,
        default=float("inf"),
        help="requests per second (Poisson arrivals); inf sends all at once",
    )
    p.add_argument("--max-concurrency", type=int, default=None)
    p.add_argument("--warmup-requests", type=int, default=1)
    p.add_argument("--disable-ignore-eos", action="store_true")
    p.add_argument("--disable-stream", action="store_true")
    p.add_argument(
        "--tokenize-prompt",
        action="store_true",
        help="send token ids instead of text (sglang: input_ids; openai: a token list)",
    )
    p.add_argument(
        "--extra-request-body",
        default=None,
        help="JSON merged into every request body, e.g. '{\"top_p\": 0.9}'",
    )
    p.add_argument(
        "--flush-cache",
        action="store_true",
        help="POST /flush_cache before the run (sglang backend)",
    )
    p.add_argument("--output-file", default=None, help="JSONL file a result line is appended to")
    p.add_argument(
        "--output-details",
        action="store_true",
        help="also write per-request lengths, timings, texts and errors",
    )
    p.add_argument("--disable-tqdm", action="store_true")
    args = p.parse_args(argv)
    if args.request_rate <= 0:
        p.error("--request-rate must be positive (inf sends all requests at once)")
    if args.max_concurrency is not None and args.max_concurrency < 1:
        p.error("--max-concurrency must be >= 1")
    return args


def load_benchmark_tokenizer(name: str | None, model: str | None) -> Any:
    from sglang.model_loader import default_model_path, load_tokenizer

    if name:
        return load_tokenizer(name)
    if model and os.path.exists(model):
        return load_tokenizer(model)
    return load_tokenizer(default_model_path())


def _json_number(x: float) -> float | str:
    return "inf" if math.isinf(x) else x


async def _arrivals(rows: list[DatasetRow], rate: float, seed: int):
    """Yields rows at their send times: back to back for inf, else Poisson with `rate`."""
    rng = np.random.default_rng(seed)
    for i, row in enumerate(rows):
        yield i, row
        if not math.isinf(rate):
            await asyncio.sleep(float(rng.exponential(1.0 / rate)))


async def run(args: argparse.Namespace, rows: list[DatasetRow], tokenizer: Any) -> dict[str, Any]:
    path, request_func = BACKENDS[args.backend]
    base_url = (args.base_url or f"http://{args.host}:{args.port}").rstrip("/")
    headers = {}
    api_key = os.environ.get("OPENAI_API_KEY") or os.environ.get("API_KEY")
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    extra = json.loads(args.extra_request_body) if args.extra_request_body else {}

    async with make_session() as session:
        model = args.model
        if model is None and args.backend != "sglang":
            model = await served_model(session, base_url, headers) or "default"

        def request(row: DatasetRow, output_len: int | None = None) -> RequestInput:
            return RequestInput(
                api_url=base_url + path,
                prompt=row.prompt,
                prompt_len=row.prompt_len,
                output_len=output_len or row.output_len,
                model=model or "",
                prompt_ids=_prompt_ids(args, row, tokenizer),
                ignore_eos=not args.disable_ignore_eos,
                stream=not args.disable_stream,
                extra_body=extra,
                headers=headers,
            )

        if args.warmup_requests > 0:
            print(f"Starting warmup with {args.warmup_requests} sequences...")
            warm = request(rows[0], min(rows[0].output_len, WARMUP_MAX_OUTPUT))
            outs = await asyncio.gather(
                *(request_func(session, warm) for _ in range(args.warmup_requests))
            )
            failed = [o for o in outs if not o.success]
            if failed:
                raise RuntimeError(
                    f"warm-up failed against {warm.api_url}; check the server and the "
                    f"arguments. Error: {failed[0].error}"
                )
            print("Warmup completed. Starting main benchmark run...")
        if args.flush_cache and args.backend == "sglang":
            async with session.post(f"{base_url}/flush_cache", headers=headers) as r:
                await r.read()

        limiter = asyncio.Semaphore(args.max_concurrency) if args.max_concurrency else None
        pbar = None
        if not args.disable_tqdm:
            from tqdm import tqdm

            pbar = tqdm(total=len(rows), desc="requests", file=sys.stdout)

        async def one(row: DatasetRow) -> RequestOutput:
            if limiter is None:
                out = await request_func(session, request(row))
            else:
                async with limiter:
                    out = await request_func(session, request(row))
            if pbar is not None:
                pbar.update(1)
            return out

        # This client's heap (tokenizer, dataset, imports) out of its collector's reach: a
        # full collection mid-run (0.1-0.5 s) would delay reading every response and count
        # as the server's latency.
        gc.collect()
        gc.freeze()
        start = time.perf_counter()
        tasks = []
        try:
            async for _, row in _arrivals(rows, args.request_rate, args.seed):
                tasks.append(asyncio.create_task(one(row)))
            outputs = await asyncio.gather(*tasks)
        finally:
            gc.unfreeze()
        duration = time.perf_counter() - start
        if pbar is not None:
            pbar.close()

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False)) if text else 0

    metrics = calculate_metrics(rows, outputs, duration, count)
    print(serving_report(args.backend, args.request_rate, args.max_concurrency, metrics))
    errors = [o.error for o in outputs if not o.success]
    if errors:
        print(f"{len(errors)} request(s) failed; first error:\n{errors[0]}")
    record = _record(args, base_url, model, tokenizer, metrics.to_dict())
    if args.output_details:
        record.update(
            input_lens=[r.prompt_len for r in rows],
            output_lens=metrics.output_lens,
            ttfts=[o.ttft for o in outputs],
            itls=[o.itl for o in outputs],
            generated_texts=[o.generated_text for o in outputs],
            errors=[o.error for o in outputs],
        )
    return record


def _prompt_ids(args: argparse.Namespace, row: DatasetRow, tokenizer: Any) -> list[int] | None:
    if not args.tokenize_prompt or args.backend == "openai-chat":
        return None
    return row.prompt_ids if row.prompt_ids is not None else list(tokenizer.encode(row.prompt))


def _record(args, base_url, model, tokenizer, metrics: dict[str, Any]) -> dict[str, Any]:
    config = {
        k: v
        for k, v in vars(args).items()
        if k not in ("output_file", "output_details", "disable_tqdm", "host", "port")
    }
    config["request_rate"] = _json_number(args.request_rate)
    return {
        **config,
        "base_url": base_url,
        "model": model,
        "tokenizer": getattr(tokenizer, "name_or_path", None) or args.tokenizer,
        **metrics,
        **environment(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    print(f"benchmark args: {args}")
    tokenizer = load_benchmark_tokenizer(args.tokenizer, args.model)
    rows = get_dataset(args, tokenizer)
    if not rows:
        raise SystemExit("the dataset gave no requests (check the filters and --num-prompts)")
    print(describe(rows))
    record = asyncio.run(run(args, rows, tokenizer))
    out = args.output_file
    if out is None:
        day = datetime.datetime.now().strftime("%m%d")
        out = (
            f"{args.backend}_{day}_{args.num_prompts}_"
            f"{args.random_input_len}_{args.random_output_len}.jsonl"
        )
    append_jsonl(out, record)
    print(f"result appended to {out}")
    return record


if __name__ == "__main__":
    main()
