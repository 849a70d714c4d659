"""A roofline model of offline ShareGPT 500 on one GPU (issue 20's 45 req/s target): the
scheduler's admission simulated step by step over the real request lengths, each step costed
from bytes and FLOPs, so scheduling ideas and cost floors can be weighed without a GPU.

    python benchmarks/offline_sharegpt_model.py [--data .bench8b/serving] [--json]

The 500 requests are the ones `gpu_load.sh`'s `rinf` run sends: `sglang.bench_serving`'s
ShareGPT sampling (seed 1) of `.bench8b/serving/sharegpt2000.json`, lengths by the tokenizer
beside it (benchmarks/prepare_serving_data.py writes both). All arrive at t = 0.

A step's cost (Llama-3.1-8B, bf16, H200):
    max(weights / HBM rate, rows x 2 x params / tensor rate) + context tokens read x KV bytes
    per token / attention rate + fixed (small kernels, graph launch); an eager forward (a
    prefill over the graphs' limits, a mixed step) costs at least the host's launch time.
Admission as core/sglang/scheduler/admission.py: prefill first, token budget
(--chunked-prefill-size), --max-running-requests; optionally decode rows in prefill forwards
(--enable-mixed-chunk), longest output first (lof), and admitting only once `admit_min`
requests can join. The figures are a model's, not measurements; the calibration row compares it
with the run measured on the H200 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys


@dataclasses.dataclass(frozen=True)
class Costs:
    """Per-step cost parameters (milliseconds, bytes, FLOPs per second)."""

    weight_bytes: float = 15.0e9  # Llama-3.1-8B less its embedding table
    hbm: float = 4.3e12  # the H200's measured copy rate
    flops_per_row: float = 16e9  # 2 x 8B parameters
    tensor: float = 650e12  # bf16 GEMMs at prefill sizes
    kv_bytes_per_token: float = 131072  # 32 layers x 8 KV heads x 128 x 2 x 2 B
    attention: float = 3.5e12  # decode attention's KV read rate (~82% of HBM)
    fixed_ms: float = 0.8  # small kernels and the graph launch, per step
    eager_ms: float = 13.0  # host time of an eager 8B forward
    graph_tokens: int = 512  # prefill graphs up to this many tokens (and 7 sequences)

    def step(self, rows: int, context_tokens: int, prefill_tokens: int, graphed: bool) -> float:
        gemm = max(self.weight_bytes / self.hbm, rows * self.flops_per_row / self.tensor) * 1e3
        attn = context_tokens * self.kv_bytes_per_token / self.attention * 1e3
        # causal attention of the new tokens (4 x T^2/2 x heads x dim x layers FLOPs)
        attn += 2 * prefill_tokens**2 * 4096 * 32 / self.tensor * 1e3
        t = gemm + attn + self.fixed_ms
        return t if graphed else max(t, self.eager_ms)


@dataclasses.dataclass(frozen=True)
class Policy:
    order: str = "fcfs"  # or "lof"
    mixed: bool = False
    max_running: int = 256
    chunk: int = 8192
    admit_min: int = 1


def simulate(ins: list[int], outs: list[int], costs: Costs, policy: Policy) -> dict:
    """Makespan (s) and step counts of all requests served to their output lengths."""
    waiting = list(range(len(ins)))
    if policy.order == "lof":
        waiting.sort(key=lambda i: -outs[i])
    running: dict[int, int] = {}  # request -> tokens generated
    done_prompt: dict[int, int] = {}  # a chunked request's prompt tokens computed
    t = prefill_ms = 0.0
    steps = {"prefill": 0, "decode": 0, "mixed": 0}
    finished = 0
    while finished < len(ins):
        plan = []
        free = policy.max_running - len(running)
        ready = waiting and (free >= min(policy.admit_min, len(waiting)) or not running)
        if ready:
            budget = policy.chunk - (len(running) if policy.mixed else 0)
            while waiting and budget > 0 and len(plan) < free:
                i = waiting[0]
                left = ins[i] - done_prompt.get(i, 0)
                take = min(left, budget)
                plan.append((i, take))
                budget -= take
                if take < left:
                    done_prompt[i] = done_prompt.get(i, 0) + take
                    break
                waiting.pop(0)
                done_prompt.pop(i, None)
        if plan:
            new = sum(n for _, n in plan)
            decoding = list(running) if policy.mixed else []
            context = sum(ins[i] + running[i] for i in decoding)
            graphed = not decoding and new <= costs.graph_tokens and len(plan) < 8
            dt = costs.step(new + len(decoding), context, new, graphed)
            prefill_ms += dt
            steps["mixed" if decoding else "prefill"] += 1
            for i in decoding:
                running[i] += 1
            for i, _ in plan:
                if i not in done_prompt:  # its whole prompt is in: the first token
                    running[i] = 1
        else:
            context = sum(ins[i] + running[i] for i in running)
            dt = costs.step(len(running), context, 0, len(running) <= 256)
            steps["decode"] += 1
            for i in running:
                running[i] += 1
        t += dt
        for i in [i for i, n in running.items() if n >= outs[i]]:
            del running[i]
            finished += 1
    return {"seconds": t / 1e3, "req_per_s": len(ins) / (t / 1e3), "steps": steps,
            "prefill_s": prefill_ms / 1e3}  # fmt: skip


def sharegpt_lengths(data: str, num: int = 500) -> tuple[list[int], list[int]]:
    from sglang.benchmark.datasets import sample_sharegpt
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(os.path.join(data, "tokenizer"))
    rows = sample_sharegpt(tokenizer, num, seed=1, path=os.path.join(data, "sharegpt2000.json"))
    return [r.prompt_len for r in rows], [r.output_len for r in rows]


SCENARIOS = {
    "calibrated (today's costs)": Costs(),
    "no eager host time, 0.3 ms fixed": Costs(fixed_ms=0.3, eager_ms=0.0),
    "same, GEMMs at 800 TFLOP/s": Costs(fixed_ms=0.3, eager_ms=0.0, tensor=800e12),
}
POLICIES = {
    "fcfs (default)": Policy(),
    "lof": Policy(order="lof"),
    "mixed chunk": Policy(mixed=True),
    "lof + mixed chunk": Policy(order="lof", mixed=True),
    "max running 512": Policy(max_running=512),
    "admit 32 at a time": Policy(admit_min=32),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".bench8b/serving")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    ins, outs = sharegpt_lengths(args.data)
    print(f"{len(ins)} requests: mean input {sum(ins) / len(ins):.1f}, mean output "
          f"{sum(outs) / len(outs):.1f}, longest output {max(outs)}")  # fmt: skip
    for scenario, costs in SCENARIOS.items():
        print(f"\n{scenario}:")
        for name, policy in POLICIES.items():
            r = simulate(ins, outs, costs, policy)
            if args.json:
                print(json.dumps({"scenario": scenario, "policy": name, **r}))
            else:
                print(f"  {name:22s} {r['seconds']:6.2f} s  {r['req_per_s']:5.1f} req/s  "
                      f"steps {r['steps']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
