"""Tunes the decode kernels' launch tables inside the model's batch-1 decode graph, one model
load for the whole sweep: the time of a step as the server replays it, not of a kernel alone.

    python3 benchmarks/sweep_decode_launch.py --preset qwen3 --device cuda \\
        --out $OUT/sweep-qwen3.jsonl --best $OUT/best-qwen3.json [--budget-s 420]

Why: the per-kernel sweeps (bench_decode_gemv.py) time each GEMV alone in a graph of its own
copies; in the model's graph, with programmatic dependent launch, a kernel shares the GPU with
its neighbours' ramps and tails, and the per-kernel winner has lost there before (gemv.py's
GEMV_LAUNCH note). Here every candidate is captured into the model's batch-1 decode graph (the
engine's own DecodeGraphRunner) and the graph replayed back to back at a context of --context
tokens: the step's device time, the figure batch-1 ITL follows.

The search is coordinate descent over a preset's axes (or --spec FILE, the same JSON): an axis
is one launch table (module, table, and for a nested table its key) and the values to try, each
merged over the best launch so far; a value within --noise of the best is not taken. `--passes
2` goes over the axes again. --budget-s stops the sweep in time to report (a device call is
capped). The best launches go to --best in benchmarks/launch_overrides.py's format, so
`bench_moe.py` / `bench_cuda_llama8b.py --launch-overrides FILE` measure them in the scheduler
loop; with --itl this script also measures the loop's ITL for the defaults and the best.
What wins becomes the module default in the code, with its figure.

`--tiny` (with a preset's model) runs the machinery on a small config on any device (a CPU
check: the xeon kernels read none of these tables, so every candidate times the same).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cuda_llama8b as b8  # noqa: E402
import torch  # noqa: E402

GEMV = "sglang_triton.gemv"
MOE = "sglang_triton.moe_decode"
ATTN = "sglang_triton.attention"
PDL = "sglang_triton.pdl"
INT4_CUDA = "sglang_cuda.kernels.gemv_int4_cuda"
FP8 = "sglang_cuda.kernels.gemv_fp8"
DENSE_CUDA = "sglang_cuda.kernels.gemv_dense_cuda"
MOE_CUDA = "sglang_cuda.kernels.moe_decode_cuda"
FP8_ROWS_CUDA = "sglang_cuda.kernels.gemv_fp8_rows_cuda"
INT4_FMA_CUDA = "sglang_cuda.kernels.gemv_int4_fma_cuda"


def _gemv_grid(**fixed):
    """GEMV launches around the defaults: rows a program, K a step, warps, split-K."""
    out = []
    for block_n, block_k, warps in ((4, 512, 4), (8, 512, 4), (16, 512, 4), (16, 1024, 8)):
        for split in (1, 2, "auto"):
            out.append(
                {
                    "block_n": block_n,
                    "block_k": block_k,
                    "num_warps": warps,
                    "split_k": split,
                    **fixed,
                }
            )
    return out


def _packed_grid():
    """4-bit expert launches: K a step (bytes a row a step: half of it), rows, warps."""
    out = [{"block_k": bk} for bk in (256, 512, 1024)]
    out += [{"block_n": bn, "block_k": 512, "num_warps": w} for bn, w in ((8, 4), (16, 4), (64, 8))]
    return out + [{"num_stages": 4}, {"num_stages": 2}]


_PACKED = [
    {
        "name": f"4-bit {key}",
        "module": MOE,
        "table": "PACKED_LAUNCH",
        "key": key,
        "values": _packed_grid(),
    }  # fmt: skip
    for key in ("gate_up", "down")
]
_INT4_WARPS = {
    "name": "int4 cuda warps",
    "module": INT4_CUDA,
    "table": "GEMV_INT4_CUDA_LAUNCH",
    "values": [
        {"ring": 2},
        {"ring": 4},
        {"ring": 3},
        {"min_warps": 4},
        {"min_warps": 1},
        {"warps": 4},
        {"warps": 8},
        {"warps": 16},
    ],
}

_INT4_FMA = {
    "name": "int4: cuda-core gemv (one row)",
    "module": INT4_FMA_CUDA,
    "table": "GEMV_INT4_FMA_LAUNCH",
    "values": [
        {"enabled": True},
        {"enabled": True, "early": True},
        {"enabled": True, "center": True},
        {"enabled": True, "per_sm": 16},
        {"enabled": True, "per_sm": 20},
        {"enabled": True, "buffers": 3, "per_sm": 16},
        {"enabled": True, "min_warps": 4},
        {"enabled": True, "warps": 8},
    ],
}

_INT4_XSMEM = {
    "name": "int4 cuda: x in shared memory",
    "module": INT4_CUDA,
    "table": "GEMV_INT4_CUDA_LAUNCH",
    "values": [{"x_smem": True}, {"x_smem": True, "buffers": 2}],
}

_ATTN = {
    "module": ATTN,
    "table": "DECODE_LAUNCH",
    "values": [
        {"programs_per_sm": 1},
        {"programs_per_sm": 4},
        {"merge": True},
        {"skip_empty": True},
        {"block_n": 32},
        {"num_warps": 2},
        {"num_stages": 2},
    ],
}
_DENSE_CUDA = {
    "name": "dense cuda gemv (bf16 weights at one row)",
    "module": DENSE_CUDA,
    "table": "GEMV_DENSE_CUDA_LAUNCH",
    "values": [
        {"enabled": True},
        {"enabled": True, "unroll": 4},
        {"enabled": True, "unroll": 1},
        {"enabled": True, "rows": 8},
        {"enabled": True, "rows": 2},
        {"enabled": True, "warps": 8},
        {"enabled": True, "warps": 2},
        {"enabled": True, "early": True},
        {"enabled": True, "rms": True},
        {"enabled": True, "rms": True, "early": True},
    ],
}
_MOE_CUDA = {
    "name": "moe cuda gemvs (16-bit experts)",
    "module": MOE_CUDA,
    "table": "MOE_DECODE_CUDA_LAUNCH",
    "values": [
        {"enabled": True},
        {"enabled": True, "unroll": 2},
        {"enabled": True, "cols": 8},
        {"enabled": True, "cols": 2},
        {"enabled": True, "rows": 16},
        {"enabled": True, "rows": 4},
        {"enabled": True, "warps": 4},
    ],
}
_FP8_ROWS_CUDA = {
    "name": "fp8 block: cuda-core gemv, x quantized inside (one row)",
    "module": FP8_ROWS_CUDA,
    "table": "GEMV_FP8_ROWS_CUDA_LAUNCH",
    "values": [
        {"enabled": True},
        {"enabled": True, "cvt": 0},
        {"enabled": True, "min_blocks": 1},
        {"enabled": True, "early": True},
        {"enabled": True, "rows": 4},
        {"enabled": True, "rows": 16, "warps": 4},
        {"enabled": True, "unroll": 2},
        {"enabled": True, "warps": 4},
    ],
}
_PDL = {"module": PDL, "table": "PDL_LAUNCH", "values": [{"enabled": False}]}
_LM_HEAD = {
    "name": "gemv (LM head and other large weights)",
    "module": GEMV,
    "table": "GEMV_LAUNCH",
    "values": [
        {"block_n": 16, "block_k": 512, "num_warps": 4},
        {"block_n": 32, "block_k": 512, "num_warps": 8},
        {"block_n": 8, "block_k": 1024, "num_warps": 8},
        {"num_stages": 4},
        {"num_stages": 2},
    ],
}

PRESETS = {
    # Qwen3-30B-A3B, bf16: the router (128 x 2048), o (2048 x 4096) and qkv (5120 x 2048)
    # GEMVs each in a size tier of their own, the MoE decode kernels, attention, the LM head.
    "qwen3": {
        "config": "benchmarks/configs/qwen3-30b-a3b",
        "axes": [
            _MOE_CUDA,
            _DENSE_CUDA,
            {
                "name": "gemv tier: router",
                "module": GEMV,
                "table": "SMALL_LAUNCH",
                "tier": 1 << 20,
                "values": _gemv_grid()[:6],
            },
            {
                "name": "gemv tier: o",
                "module": GEMV,
                "table": "SMALL_LAUNCH",
                "tier": 9 << 20,
                "values": _gemv_grid(),
            },
            {
                "name": "gemv tier: qkv",
                "module": GEMV,
                "table": "SMALL_LAUNCH",
                "tier": 12 << 20,
                "values": _gemv_grid(),
            },
            {
                "name": "moe gate_up",
                "module": MOE,
                "table": "DECODE_LAUNCH",
                "key": "gate_up",
                "values": [
                    {"block_n": 16, "block_k": 128, "num_warps": 4},
                    {"block_n": 16, "block_k": 256, "num_warps": 8},
                    {"block_n": 32, "block_k": 64, "num_warps": 4},
                    {"block_n": 64, "block_k": 64, "num_warps": 8},
                    {"num_stages": 4},
                    {"num_stages": 2},
                ],
            },
            {
                "name": "moe down",
                "module": MOE,
                "table": "DECODE_LAUNCH",
                "key": "down",
                "values": [
                    {"block_n": 16, "block_k": 128, "num_warps": 4},
                    {"block_n": 8, "block_k": 256, "num_warps": 4},
                    {"block_n": 4, "block_k": 128, "num_warps": 2},
                    {"split": False},
                    {"num_stages": 4},
                ],
            },
            {"name": "attention", **_ATTN},
            _LM_HEAD,
            {"name": "pdl", **_PDL},
        ],
    },
    # Qwen3-30B-A3B, bf16: the CUDA C++ dense GEMV against the Triton one (qkv, o, router, LM head)
    "qwen3-dense": {"config": "benchmarks/configs/qwen3-30b-a3b", "axes": [_DENSE_CUDA]},
    # the same: the CUDA C++ MoE decode GEMVs against the Triton ones, then the dense GEMV's
    # variants (its RMS norm inside: gemm.dense_rms)
    "qwen3-moe": {"config": "benchmarks/configs/qwen3-30b-a3b", "axes": [_MOE_CUDA, _DENSE_CUDA]},
    # gpt-oss-20b with its MXFP4 experts kept: the 4-bit experts' launches (PACKED_LAUNCH).
    "gpt-oss": {
        "config": "benchmarks/configs/gpt-oss-20b",
        "keep_quantization": True,
        "axes": [
            *_PACKED,
            {"name": "attention", **_ATTN},
        ],
    },
    # Qwen3-30B-A3B-GPTQ-Int4's config: int4 experts kept (PACKED_LAUNCH), the CUDA int4 GEMV.
    "qwen3-gptq": {
        "config": "benchmarks/configs/qwen3-30b-a3b-gptq-int4",
        "keep_quantization": True,
        "axes": [
            *_PACKED,
            _INT4_WARPS,
            _INT4_XSMEM,
        ],
    },
    # Llama-3.1-8B with AWQ g128: the CUDA C++ int4 GEMV's warps, attention, the LM head.
    "llama8b-awq": {
        "quant": "awq",
        "axes": [
            _INT4_FMA,
            {**_DENSE_CUDA, "name": "dense cuda gemv (the LM head)"},
            _INT4_XSMEM,
            {**_INT4_WARPS, "values": [*_INT4_WARPS["values"], {"early": True}]},
            {"name": "attention", **_ATTN},
            _LM_HEAD,
            {"name": "pdl", **_PDL},
        ],
    },
    # Llama-3.1-8B with FP8 blocks of 128 x 128: the CUDA-core GEMV (x quantized inside it), the
    # tensor-core GEMV (with x quantized in a launch of its own or inside its loop), attention,
    # the LM head.
    "llama8b-fp8": {
        "quant": "fp8-block",
        "axes": [
            _FP8_ROWS_CUDA,
            {
                "name": "fp8 block gemv",
                "module": FP8,
                "table": "GEMV_FP8_BLOCK_LAUNCH",
                "values": [
                    {"mma": "fused"},
                    {"block_n": 128},
                    {"block_n": 32},
                    {"num_stages": 4},
                    {"num_stages": 5},
                    {"split_k": 1},
                    {"split_k": 2},
                    {"waves": 2},
                    {"waves": 8},
                ],
            },
            {"name": "attention", **_ATTN},
            _LM_HEAD,
            {"name": "pdl", **_PDL},
        ],
    },
    "llama8b": {
        "quant": "none",
        "axes": [
            _DENSE_CUDA,
            {
                "name": "gemv (every bf16 weight)",
                "module": GEMV,
                "table": "GEMV_LAUNCH",
                "values": _gemv_grid(),
            },
            {"name": "attention", **_ATTN},
            {"name": "pdl", **_PDL},
        ],
    },
}


# --- launch tables ----------------------------------------------------------------------------
def _table(axis):
    return getattr(importlib.import_module(axis["module"]), axis["table"])


def snapshot(axes) -> dict:
    """Deep copies of every table the axes touch, keyed (module, table)."""
    return {(a["module"], a["table"]): copy.deepcopy(_table(a)) for a in axes}


def _put(module: str, table: str, value) -> None:
    """Replace a table's contents in place (code that imported the object sees the change)."""
    current = getattr(importlib.import_module(module), table)
    if isinstance(current, dict):
        current.clear()
        current.update(copy.deepcopy(value))
    else:
        current[:] = copy.deepcopy(value)


def restore(saved: dict) -> None:
    for (module, table), value in saved.items():
        _put(module, table, value)


def with_tier(tiers, limit: int, launch: dict) -> list:
    """SMALL_LAUNCH with `limit`'s tier set to `launch` (merged over the tier that held that
    size before, which the new tier splits off), in ascending order."""
    tiers = [[int(lim), dict(cfg)] for lim, cfg in tiers]
    for entry in tiers:
        if entry[0] == limit:
            entry[1].update(launch)
            return tiers
    held = next((cfg for lim, cfg in tiers if limit <= lim), {})
    tiers.append([limit, {**held, **launch}])
    return sorted(tiers, key=lambda e: e[0])


def applied(axis, value, current):
    """The table `axis` names with `value` put over `current` (the table's best so far)."""
    if "tier" in axis:
        return with_tier(current, axis["tier"], value)
    new = copy.deepcopy(current)
    if "key" in axis:
        new[axis["key"]] = {**new[axis["key"]], **value}
    else:
        new.update(value)
    return new


def install(axis, table) -> None:
    _put(axis["module"], axis["table"], table)


def overrides(best: dict, saved: dict) -> dict:
    """The tables that differ from the defaults, as launch_overrides.apply reads them."""
    out = {}
    for (module, table), value in best.items():
        if json.loads(json.dumps(value)) == json.loads(json.dumps(saved[(module, table)])):
            continue
        name = f"{module.rsplit('.', 1)[-1]}.{table}"
        if isinstance(value, dict):
            out[name] = {"module": module, "table": table, "launch": value}
        else:
            out[name] = {"module": module, "table": table, "value": value}
    return out


# --- timing -----------------------------------------------------------------------------------
@torch.inference_mode()
def step_time(runner, context: int, reps: int, blocks: int = 5) -> float:
    """Seconds of one batch-1 decode step: the engine's batch-1 graph (captured afresh, so the
    tables now installed take effect) replayed back to back over a sequence of `context` tokens
    in slots 1..context; the median over `blocks` runs of `reps` replays."""
    replay = batch1_graph(runner, context)
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(reps):
            replay()
        runner.runtime.synchronize()
        times.append((time.perf_counter() - start) / reps)
    return statistics.median(times)


@torch.inference_mode()
def profile_steps(runner, context: int, path: str, steps: int = 20) -> None:
    """The kernels of `steps` batch-1 decode steps (torch profiler; device time where the
    profiler sees the device), a table sorted by total time written to `path`."""
    replay = batch1_graph(runner, context)
    activities = torch.profiler.supported_activities()
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            replay()
        runner.runtime.synchronize()
    device = torch.profiler.ProfilerActivity.CUDA in activities
    key = "self_device_time_total" if device else "self_cpu_time_total"
    with open(path, "w") as f:
        f.write(f"{steps} batch-1 decode steps at context {context}\n")
        f.write(prof.key_averages().table(sort_by=key, row_limit=30) + "\n")


@torch.inference_mode()
def batch1_graph(runner, context: int):
    """The batch-1 decode graph, captured afresh, its inputs set to a sequence of `context`
    tokens in slots 1..context, warmed up: returns its replay."""
    runner.init_graph_runner([1])
    graphs = runner.graph_runner
    if graphs is None or 1 not in graphs.graphs:
        raise RuntimeError("batch-1 decode graph capture failed (see the log)")
    slots = min(context, runner.allocator.total_size - 2)
    graphs.kv_indptr[1] = slots
    graphs.kv_indices[:slots].copy_(torch.arange(1, slots + 1, device=graphs.kv_indices.device))
    graphs.positions[0] = slots
    graphs.out_cache_loc[0] = slots + 1
    replay = graphs.graphs[1]
    for _ in range(10):
        replay()
    runner.runtime.synchronize()
    return replay


# --- the sweep --------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=sorted(PRESETS), required=True)
    p.add_argument("--spec", metavar="FILE", help="axes as JSON (a list), replacing the preset's")
    p.add_argument("--device", default="auto")
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--context", type=int, default=256, help="the sequence's tokens")
    p.add_argument("--reps", type=int, default=60, help="replays a timed block")
    p.add_argument("--noise", type=float, default=0.005, help="relative gain a change needs")
    p.add_argument("--passes", type=int, default=1)
    p.add_argument("--budget-s", type=float, default=0.0, help="stop trying after this (0: none)")
    p.add_argument("--itl", action="store_true", help="scheduler-loop ITL of defaults and best")
    p.add_argument(
        "--profile",
        metavar="PREFIX",
        help="also profile the defaults' steps, with PDL (PREFIX-pdl.txt) and without "
        "(PREFIX-nopdl.txt: each kernel's own time, not its wait for the one before)",
    )
    p.add_argument("--out", default="sweep.jsonl")
    p.add_argument("--best", default="best-launch.json")
    return p.parse_args(argv)


def build(args, preset: dict):
    """The preset's model (a config directory, or Llama-3.1-8B with a quantization), dummy
    weights, decode graphs for batch 1 only, no prefill graphs."""
    os.environ.setdefault("SGLANG_PREFILL_GRAPH_MAX_TOKENS", "0")
    tmp = tempfile.mkdtemp(prefix="sweep-")
    if "config" in preset:
        import bench_moe

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, preset["config"], "config.json")) as f:
            config = json.load(f)
        if not preset.get("keep_quantization"):
            config.pop("quantization_config", None)
        if args.tiny:
            config.update(
                {k: v for k, v in bench_moe.TINY.items() if k in config or k == "num_hidden_layers"}
            )
        quant = "none"
    else:
        config = dict(b8.LLAMA_31_8B, **(b8.TINY if args.tiny else {}))
        quant = preset["quant"]
        if quant in b8.QUANT_CONFIGS:
            q = dict(b8.QUANT_CONFIGS[quant])
            if args.tiny:
                q.update(
                    {"weight_block_size": [16, 16]}
                    if "weight_block_size" in q
                    else {"group_size": 16}
                )
            config["quantization_config"] = q
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(config, f)
    b8_argv = ["--device", args.device, "--quant", quant, "--step-batches", "1"]
    b8_argv += ["--cuda-graph-max-bs", "1", "--random-prompts", "1", "--context-length", "4096"]
    return b8.build(b8.parse_args(b8_argv), tmp)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    from sglang.benchmark.report import append_jsonl, environment

    preset = PRESETS[args.preset]
    axes = preset["axes"]
    if args.spec:
        with open(args.spec) as f:
            axes = json.load(f)
    base, info = build(args, preset)
    runner = base.runner
    saved = snapshot(axes)
    best = copy.deepcopy(saved)
    head = {
        "preset": args.preset,
        "tiny": args.tiny,
        "context": args.context,
        "device": info["device"],
        "backend": info["backend"],
        **environment(),
    }
    print(json.dumps(head), flush=True)
    started = time.perf_counter()

    def record(**row):
        append_jsonl(args.out, {**row, **head})

    default_s = best_s = step_time(runner, args.context, args.reps)
    print(f"defaults: {1e3 * default_s:.4f} ms a step", flush=True)
    record(axis="defaults", value=None, step_ms=1e3 * default_s)
    stopped = False
    for sweep in range(args.passes):
        for axis in axes:
            key = (axis["module"], axis["table"])
            name = axis.get("name", axis["table"])
            for value in axis["values"]:
                if args.budget_s and time.perf_counter() - started > args.budget_s:
                    stopped = True
                    break
                trial = applied(axis, value, best[key])
                install(axis, trial)
                try:
                    t = step_time(runner, args.context, args.reps)
                except Exception as e:  # noqa: BLE001 - a launch that fails is reported, skipped
                    print(f"{name} {value}: failed: {e!r}", flush=True)
                    record(axis=name, value=value, error=repr(e)[:500], sweep=sweep)
                    install(axis, best[key])
                    continue
                gain = t < best_s * (1 - args.noise)
                print(
                    f"{name} {json.dumps(value)}: {1e3 * t:.4f} ms{'  <- best' if gain else ''}",
                    flush=True,
                )
                record(axis=name, value=value, step_ms=1e3 * t, taken=gain, sweep=sweep)
                if gain:
                    best[key], best_s = trial, t
                    with open(args.best, "w") as f:
                        json.dump(overrides(best, saved), f, indent=1)
                install(axis, best[key])
            if stopped:
                break
        if stopped:
            break
    final_s = step_time(runner, args.context, args.reps)
    restore(saved)
    again_s = step_time(runner, args.context, args.reps)
    summary = {
        "defaults_ms": 1e3 * default_s,
        "defaults_again_ms": 1e3 * again_s,
        "best_ms": 1e3 * final_s,
        "best": overrides(best, saved),
        "stopped_by_budget": stopped,
        "sweep_s": time.perf_counter() - started,
    }
    with open(args.best, "w") as f:
        json.dump(summary["best"], f, indent=1)
    if args.itl:
        from launch_overrides import apply as apply_launches

        def itl():
            s = b8.fresh_scheduler(base, radix=False)
            runner.init_graph_runner([1])
            return b8.single_request_itl(s, 128, 64)["median_itl_ms"]

        summary["itl_defaults_ms"] = itl()
        apply_launches(args.best)
        summary["itl_best_ms"] = itl()
        restore(saved)
    if args.profile:
        from sglang_triton import pdl

        profile_steps(runner, args.context, f"{args.profile}-pdl.txt")
        enabled = pdl.PDL_LAUNCH["enabled"]
        pdl.PDL_LAUNCH["enabled"] = False
        try:
            profile_steps(runner, args.context, f"{args.profile}-nopdl.txt")
        finally:
            pdl.PDL_LAUNCH["enabled"] = enabled
    record(axis="summary", value=None, **summary)
    print("== sweep " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
