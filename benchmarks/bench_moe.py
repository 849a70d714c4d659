"""Mixture-of-experts / MLA model configs (random weights, bfloat16) on one accelerator: batch-1
decode latency and offline throughput, one model load for both.

    python benchmarks/bench_moe.py --config benchmarks/configs/qwen3-30b-a3b --device cuda \\
        --only act --out $OUT/moe.jsonl

The config directory's config.json is loaded with `--load-format dummy` (no hub needed); a
`quantization_config` in it is dropped (the experts run in bfloat16) unless --keep-quantization
(gpt-oss: the MXFP4 experts as the checkpoint format declares them, random codes). Workloads, as
bench_cuda_llama8b.py defines them (its helpers are reused):
  a  batch-1 decode ITL: input 128, output 256, static batch and the scheduler's own loop
  c  offline throughput: --random-prompts random prompts (256), 1024 in / 256 out
  t  the same workload in transformers' continuous batching (bench_hf_moe.py, whose docstring
     states its settings), in its own process (cuda when present, else the CPU) before our
     engine loads (so the two never hold device memory together), on the first --hf-prompts
     (256) of the same prompt ids, greedy, EOS ignored, 256 new tokens each, the
     timed part capped at --hf-max-s s (a capped run reports throughput over the requests
     finished, `capped: true`); with c, one more line: our output tok/s and req/s over theirs.
`--tiny` shrinks the config (2 layers, small sizes) for a CPU check of the script.
The KV bytes per token the runner sized its pool with are printed (MLA: the latent row).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cuda_llama8b as b8  # noqa: E402

TINY = {
    "num_hidden_layers": 2,
    "hidden_size": 128,
    "intermediate_size": 256,
    "moe_intermediate_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "num_experts": 8,
    "num_local_experts": 8,
    "n_routed_experts": 8,
    "kv_lora_rank": 64,
    "q_lora_rank": None,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "layer_types": ["sliding_attention", "full_attention"],
    "num_experts_per_tok": 2,
    "experts_per_token": 2,
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", required=True, help="a directory holding config.json")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--launch-overrides",
        metavar="FILE",
        help="decode GEMV launches from bench_decode_gemv.py --pick-best (benchmarks/"
        "launch_overrides.py)",
    )
    p.add_argument("--only", default="ac")
    p.add_argument("--out", default="moe.jsonl")
    p.add_argument("--random-prompts", type=int, default=256)
    p.add_argument("--hf-prompts", type=int, default=256, help="t: the first N prompts")
    p.add_argument("--hf-max-s", type=float, default=90.0, help="t: cap on the timed part")
    p.add_argument("--hf-attn", default=None, help="t: attn_implementation (default: theirs)")
    p.add_argument("--itl-output", type=int, default=256)
    p.add_argument("--context-length", type=int, default=4096)
    p.add_argument("--mem-fraction-static", type=float, default=None)
    p.add_argument("--disable-cuda-graph", action="store_true")
    p.add_argument("--tiny", action="store_true")
    p.add_argument(
        "--keep-quantization",
        action="store_true",
        help="keep the config's quantization_config (gpt-oss: MXFP4 experts, random codes)",
    )
    p.add_argument(
        "--profile-batch",
        type=int,
        default=0,
        help="also print the top device kernels of a few decode steps at this batch size",
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with open(os.path.join(args.config, "config.json")) as f:
        config = json.load(f)
    if not args.keep_quantization:
        config.pop("quantization_config", None)
    if args.tiny:
        config.update({k: v for k, v in TINY.items() if k in config or k == "num_hidden_layers"})
    tmp = tempfile.mkdtemp(prefix="moe-")
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config, f)
    name = os.path.basename(os.path.normpath(args.config)) + (" (tiny)" if args.tiny else "")
    # transformers first, in its own process: ours keeps its KV pool and graph pools in this
    # process (an H200 run of ours-then-theirs ran out of memory with 125 GiB still held).
    hf = run_transformers(args, tmp, name) if "t" in args.only else None
    ours = run_ours(args, config, tmp, name) if set(args.only) & set("ac") else None
    if hf is not None and ours is not None:
        report_ratio(args, name, ours, hf)
    return 0


def run_ours(args, config: dict, tmp: str, name: str) -> dict | None:
    """Workloads a and c on our engine; returns c's metrics (None without c)."""
    from launch_overrides import apply as apply_launches
    from sglang.bench_offline_throughput import throughput_scheduler
    from sglang.bench_one_batch import StaticBatch
    from sglang.benchmark.report import append_jsonl, environment

    launches = apply_launches(args.launch_overrides)
    b8_argv = [
        "--device",
        args.device,
        "--context-length",
        str(args.context_length),
        "--random-prompts",
        str(args.random_prompts),
        "--step-batches",
        "1",
    ]
    if args.mem_fraction_static:
        b8_argv += ["--mem-fraction-static", str(args.mem_fraction_static)]
    if args.disable_cuda_graph:
        b8_argv += ["--disable-cuda-graph"]
    base, info = b8.build(b8.parse_args(b8_argv), tmp)
    runner = base.runner
    kv = runner.kv_cache
    head = {
        "model": f"{name} config, dummy weights, bf16",
        "backend": info["backend"],
        "device": info["device"],
        "graphs": runner.graph_runner.batch_sizes if runner.graph_runner else None,
        "startup_s": info["startup_s"],
        "weight_gib": runner.weight_bytes / 2**30,
        "kv_bytes_per_token": kv.nbytes() // (kv.num_slots + 1),
        "max_total_tokens": info["max_total_tokens"],
        "kernels": info["kernels"],
        **environment(),
        **({"launch_overrides": launches} if launches else {}),
    }
    print(json.dumps(head, indent=1), flush=True)

    def record(workload, **metrics):
        append_jsonl(args.out, {"workload": workload, **metrics, **head})
        print(f"== {name} {workload}: {json.dumps(metrics)}", flush=True)

    static = StaticBatch(b8.fresh_scheduler(base, radix=False), seed=1)
    static.run(1, 128, 8, 0)  # warm-up (JIT compilation)
    if args.profile_batch:
        b8.profile_step(static, args.profile_batch, args.out)
    if "a" in args.only:
        r = static.run(1, 128, args.itl_output, 0)
        lat = r["decode_latencies"]
        record(
            "a: batch-1 decode ITL (in 128, out 256), static batch",
            median_itl_ms=1e3 * statistics.median(lat),
            mean_itl_ms=1e3 * statistics.mean(lat),
            prefill_ms=1e3 * r["prefill_latency"],
        )
        record(
            "a: batch-1 decode ITL (in 128, out 256), scheduler loop",
            **b8.single_request_itl(b8.fresh_scheduler(base, radix=False), 128, args.itl_output),
        )
    metrics = None
    if "c" in args.only:
        rows = b8.random_rows(args.random_prompts, 1024, 256, config["vocab_size"], 2)
        throughput_scheduler(b8.fresh_scheduler(base, False), rows[:4], b8.offline_args(), cap=16)
        s = b8.fresh_scheduler(base, radix=False)
        m = throughput_scheduler(s, rows, b8.offline_args())
        metrics = dict(
            prompts=len(rows),
            duration_s=m["total_latency"],
            output_tok_s=m["output_throughput"],
            req_s=m["request_throughput"],
            total_tok_s=m["total_throughput"],
            failed=m["failed_requests"],
            retractions=s.stats.retractions,
        )
        record(f"c: offline {len(rows)} random prompts 1024/256", **metrics)
    return metrics


def run_transformers(args, tmp: str, name: str) -> dict:
    """Workload t: bench_hf_moe.py in its own process on tmp's config (the one ours runs)."""
    from sglang.benchmark.report import append_jsonl, environment

    result = os.path.join(tmp, "hf.json")
    cmd = [
        sys.executable,
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_hf_moe.py"),
    ]
    cmd += ["--config", tmp, "--prompts", str(args.hf_prompts), "--max-s", str(args.hf_max_s)]
    cmd += ["--out", result] + (["--attn", args.hf_attn] if args.hf_attn else [])
    subprocess.run(cmd, check=True)
    with open(result) as f:
        hf = json.loads(f.read().splitlines()[-1])
    n = hf["prompts"]
    label = f"t: transformers continuous batching, {n} random prompts 1024/256"
    if hf["capped"]:
        label += f", capped at {hf['max_s']:g} s: {hf['finished']} finished (rates over those)"
    model = f"{name} config, random weights, bf16"
    append_jsonl(args.out, {"workload": label, **hf, "model": model, **environment()})
    print(f"== {name} {label}: {json.dumps(hf)}", flush=True)
    return hf


def report_ratio(args, name: str, ours: dict, hf: dict) -> None:
    """The c/t line: our output tok/s and req/s over transformers'."""
    from sglang.benchmark.report import append_jsonl, environment

    n, model = hf["prompts"], f"{name} config, random weights, bf16"
    ratio = {
        "output_tok_s_ratio": ours["output_tok_s"] / hf["output_tok_s"] if hf["finished"] else None,
        "req_s_ratio": ours["req_s"] / hf["req_s"] if hf["finished"] else None,
        "ours_output_tok_s": ours["output_tok_s"],
        "hf_output_tok_s": hf["output_tok_s"],
        "ours_req_s": ours["req_s"],
        "hf_req_s": hf["req_s"],
        "ours_prompts": ours["prompts"],
        "hf_prompts": n,
        "hf_capped": hf["capped"],
        "hf_finished": hf["finished"],
    }
    label = f"c/t: ours ({ours['prompts']} prompts) over transformers ({n} prompts"
    label += f", capped, {hf['finished']} finished)" if hf["capped"] else ")"
    append_jsonl(args.out, {"workload": label, **ratio, "model": model, **environment()})
    print(f"== {name} {label}: {json.dumps(ratio)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
