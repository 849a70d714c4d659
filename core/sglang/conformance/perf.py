"""`sglang conformance --mode perf`: each op's time on the backend, against the reference backend
and optionally another (`--against`), at the shapes real models give it: the layers of
Llama-3.1-8B (hidden 4096, 32 heads, 8 KV heads of 128, MLP 14336) and Qwen3-30B-A3B (hidden
2048, 128 experts of 768, top-8), in bfloat16, at decode (32 sequences) and prefill (512 tokens).

Inputs come from the op spec's own generator with the shape's parameters; each backend runs the
kernel it would choose for the shape (prepared weights prepared once, outside the timing). Time:
the median of `repeat` calls after one warm-up, each synchronised. The reference runs on the
CPU, as it does when it serves.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import torch

from sglang.backend.discovery import Discovery
from sglang.backend.registry import prepared_arguments
from sglang.conformance.runner import Target, to_device
from sglang.ops.spec import Case
from sglang.ops.specs import get_spec

DTYPE = torch.bfloat16
LLAMA_ATTN = {"heads": 32, "kv_heads": 8, "head_dim": 128, "page_size": 1}
DECODE_SEQS = tuple((1023, 1) for _ in range(32))

# (op, shape name, the case parameters that differ from the op's first bfloat16 case)
SHAPES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("norm.rms", "llama8b-decode", {"tokens": 32, "dim": 4096, "residual": True}),
    ("norm.rms", "llama8b-prefill", {"tokens": 512, "dim": 4096, "residual": True}),
    ("act.silu_mul", "llama8b-decode", {"tokens": 32, "inter": 14336}),
    ("act.silu_mul", "llama8b-prefill", {"tokens": 512, "inter": 14336}),
    (
        "rope",
        "llama8b-decode",
        {
            "tokens": 32,
            "heads": 32,
            "kv_heads": 8,
            "head_dim": 128,
            "rotary_dim": 128,
            "max_position": 8192,
        },
    ),
    (
        "kv.store",
        "llama8b-decode",
        {"tokens": 32, "kv_heads": 8, "head_dim": 128, "v_head_dim": 128},
    ),
    ("attention.decode", "llama8b-B32-ctx1024", {**LLAMA_ATTN, "seqs": DECODE_SEQS}),
    ("attention.extend", "llama8b-prefill512", {**LLAMA_ATTN, "seqs": ((0, 512),)}),
    ("gemm.dense", "llama8b-qkv-decode", {"m": 32, "k": 4096, "n": 6144, "bias": False}),
    ("gemm.dense", "llama8b-down-prefill", {"m": 512, "k": 14336, "n": 4096, "bias": False}),
    ("gemm.int4", "llama8b-o-decode", {"m": 32, "k": 4096, "n": 4096, "bias": False}),
    ("gemm.fp8", "llama8b-o-decode", {"m": 32, "k": 4096, "n": 4096, "bias": False}),
    ("gemm.int8", "llama8b-o-decode", {"m": 32, "k": 4096, "n": 4096, "bias": False}),
    ("gemm.fp4", "llama8b-o-decode", {"m": 32, "k": 4096, "n": 4096, "bias": False}),
    ("moe.route", "qwen3moe-decode", {"tokens": 32}),
    (
        "moe.experts",
        "qwen3moe-decode",
        {"tokens": 32, "hidden": 2048, "inter": 768, "experts": 128, "top_k": 8, "pad": False},
    ),
    ("sampling.sample", "qwen3-B32", {"batch": 32, "vocab": 151936}),
    ("grammar.apply_bitmask", "qwen3-B32", {"batch": 32, "vocab": 151936}),
)


def perf_case(op: str, shape: str, params: dict[str, Any]) -> Case:
    spec = get_spec(op)
    dtypes = {c.dtype for c in spec.cases()}
    dtype = DTYPE if DTYPE in dtypes else torch.float32
    template = next(c for c in spec.cases() if c.dtype == dtype)
    return Case(op, f"perf-{shape}", dtype, {**template.params, **params}, template.requires)


def time_kernel(target: Target, case: Case, repeat: int) -> dict[str, Any]:
    spec = get_spec(case.op)
    caps = target.backend.capabilities
    missing = caps.missing(list(spec.required_capabilities(case)))
    if missing:
        return {"skipped": "missing capability: " + ", ".join(missing)}
    kernel, rejected = target.registry.backend_kernel(
        case.op, target.name, caps, {**case.params, "dtype": case.dtype}
    )
    if kernel is None:
        kernel, _ = target.registry.backend_kernel(case.op, "reference", None, None)
        fallback = True
    else:
        fallback = False
    inputs = spec.make_inputs(case, torch.Generator().manual_seed(case.seed))
    args = prepared_arguments(kernel, to_device(inputs, target.runtime.device))
    times = []
    for i in range(repeat + 1):
        call = to_device(args, target.runtime.device) if spec.mutates else args
        target.runtime.synchronize()
        start = time.perf_counter()
        kernel.fn(**call)
        target.runtime.synchronize()
        if i:  # the first call warms up
            times.append(time.perf_counter() - start)
    out = {"kernel": kernel.name, "median_us": round(statistics.median(times) * 1e6, 1)}
    if fallback:
        out["reference_fallback"] = True
    return out


def run_perf(
    found: Discovery,
    names: list[str],
    ops: list[str] | None,
    against: str | None,
    repeat: int | None,
    report: str | None,
) -> int:
    targets = {}
    for name in [*names, *([against] if against else []), "reference"]:
        if name not in targets:
            b = found.backends[name]
            targets[name] = Target(b, found.registry, b.create_runtime(device_index=0))
    rows = []
    header = f"{'op':<22} {'shape':<24} " + " ".join(f"{n:>22}" for n in targets)
    print(header + "\n" + "-" * len(header))
    for op, shape, params in SHAPES:
        if ops is not None and op not in ops:
            continue
        case = perf_case(op, shape, params)
        row: dict[str, Any] = {"op": op, "shape": shape, "dtype": str(case.dtype)[6:]}
        for name, target in targets.items():
            n = repeat or (3 if target.runtime.device.type == "cpu" else 20)
            row[name] = time_kernel(target, case, n)
        ref = row["reference"].get("median_us")
        for name in names:
            mine = row[name].get("median_us")
            if mine and ref:
                row[name]["speedup_vs_reference"] = round(ref / mine, 2)
        rows.append(row)
        cells = [_cell(row[n]) for n in targets]
        print(f"{op:<22} {shape:<24} " + " ".join(f"{c:>22}" for c in cells))
    if report:
        with open(report, "w") as f:
            json.dump({"mode": "perf", "backends": list(targets), "rows": rows}, f, indent=1)
            f.write("\n")
    return 0


def _cell(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return "skipped"
    note = " (ref)" if result.get("reference_fallback") else ""
    return f"{result['median_us']:.1f} us{note}"
