"""transformers' continuous batching (`model.generate_batch`) on the offline workload of
bench_moe.py (random prompts, 1024 in / 256 out, greedy, EOS ignored), random bfloat16 weights
made on the device from a config directory: the peer figure for the MoE throughput target.

    python benchmarks/bench_hf_moe.py --config benchmarks/configs/qwen3-30b-a3b \\
        --prompts 32 256 --budget-s 240 --out $OUT/hf_moe.jsonl

Runs the prompt counts in order and stops before one whose estimated time (from the last
run's rate) exceeds what is left of --budget-s; each completed run is one JSON line with its
output tokens per second. Runs in its own process: the engine's copy of the weights is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--prompts", type=int, nargs="+", default=[32, 256])
    p.add_argument("--input-len", type=int, default=1024)
    p.add_argument("--output-len", type=int, default=256)
    p.add_argument("--budget-s", type=float, default=240)
    p.add_argument("--out", default="hf_moe.jsonl")
    p.add_argument("--tiny", action="store_true", help="2 layers (a CPU check of the script)")
    args = p.parse_args(argv)
    import transformers as tf

    with open(os.path.join(args.config, "config.json")) as f:
        raw = json.load(f)
    raw.pop("quantization_config", None)
    if args.tiny:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from bench_moe import TINY

        raw.update({k: v for k, v in TINY.items() if k in raw or k == "num_hidden_layers"})
    config = tf.AutoConfig.for_model(**{k: v for k, v in raw.items() if k != "architectures"})
    config.architectures = raw["architectures"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.perf_counter()
    with torch.device(device):
        model = tf.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()
    load_s = time.perf_counter() - start
    gen = tf.GenerationConfig(
        max_new_tokens=args.output_len,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )
    rng = np.random.default_rng(2)
    deadline = time.perf_counter() + args.budget_s
    rate = None  # seconds per prompt of the last run
    head = {
        "peer": f"transformers {tf.__version__} generate_batch",
        "device": device,
        "model": os.path.basename(os.path.normpath(args.config)),
        "load_s": load_s,
    }
    print(json.dumps(head), flush=True)
    for n in args.prompts:
        left = deadline - time.perf_counter()
        if rate is not None and rate * n > left:
            print(f"skip {n} prompts: ~{rate * n:.0f} s estimated, {left:.0f} s left", flush=True)
            break
        prompts = rng.integers(100, raw["vocab_size"] - 100, size=(n, args.input_len)).tolist()
        t0 = time.perf_counter()
        out = model.generate_batch(inputs=prompts, generation_config=gen)
        if device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        tokens = sum(len(o.generated_tokens) for o in out.values())
        rate = wall / n
        line = {
            **head,
            "prompts": n,
            "duration_s": wall,
            "output_tokens": tokens,
            "output_tok_s": tokens / wall,
        }
        print(json.dumps(line), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
