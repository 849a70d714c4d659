"""The extend (prefill) attention kernel at long context on one GPU: Llama-3.1-8B's heads (32
query, 8 KV, head dim 128, bfloat16), one sequence over the paged cache, launch parameters from
a table, against torch's SDPA backends on the same dense K/V (the peer figure: FlashAttention 2
and cuDNN, as far as this torch has them).

    python benchmarks/tune_cuda_extend.py [--lengths 4096 32768] [--out tune_extend.jsonl]

Shapes: `N` new tokens with no prefix (a whole prompt), and `8k@P`: the last 8192-token chunk
of a prompt of P tokens (chunked prefill: P - 8192 cached keys before it). FLOPs count QK^T
and PV over the visible keys only (causal). Each config is checked against SDPA's output
(relative Frobenius error; bf16 lands near 4e-3) before it is timed (triton's do_bench,
median).
"""

from __future__ import annotations

import argparse
import json

import torch

CONFIGS = [
    {"block_m": 64, "block_n": 32, "num_warps": 4, "num_stages": 2},  # the default before
    {"block_m": 64, "block_n": 64, "num_warps": 4, "num_stages": 3},
    {"block_m": 128, "block_n": 32, "num_warps": 4, "num_stages": 2},
    {"block_m": 128, "block_n": 64, "num_warps": 4, "num_stages": 3},
    {"block_m": 128, "block_n": 64, "num_warps": 8, "num_stages": 2},
    {"block_m": 128, "block_n": 64, "num_warps": 8, "num_stages": 3},
    {"block_m": 128, "block_n": 128, "num_warps": 8, "num_stages": 2},
    {"block_m": 128, "block_n": 128, "num_warps": 8, "num_stages": 3},
]
H, HKV, D = 32, 8, 128


def shapes(lengths):
    for n in lengths:
        yield f"{n}", n, 0
        if n > 8192:
            yield f"8k@{n}", 8192, n - 8192


def flop(n, prefix):
    visible = n * prefix + n * (n + 1) / 2
    return 4 * H * D * visible


def sdpa(q, k, v, prefix, backend):
    """q [N, H, D], k/v [L, Hkv, D] dense -> [N, H, D], causal aligned to the last key."""
    from torch.nn.attention import sdpa_kernel
    from torch.nn.functional import scaled_dot_product_attention as attn

    group = H // HKV
    qb = q.transpose(0, 1).unsqueeze(0)
    kb = k.repeat_interleave(group, 1).transpose(0, 1).unsqueeze(0)
    vb = v.repeat_interleave(group, 1).transpose(0, 1).unsqueeze(0)
    from torch.nn.attention.bias import causal_lower_right

    bias = causal_lower_right(q.shape[0], k.shape[0]) if prefix else None

    def run():
        with sdpa_kernel([backend]):
            if bias is None:
                return attn(qb, kb, vb, is_causal=True)
            return attn(qb, kb, vb, attn_mask=bias)

    return run


def main() -> int:
    from sglang_triton import attention as tri
    from triton.testing import do_bench

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--lengths", type=int, nargs="+", default=[4096, 8192, 16384, 32768])
    p.add_argument("--out", default="tune_extend.jsonl")
    args = p.parse_args()
    from torch.nn.attention import SDPBackend

    backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION}
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        backends["cudnn"] = SDPBackend.CUDNN_ATTENTION
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    rows = []
    for name, n, prefix in shapes(args.lengths):
        length = prefix + n
        q = torch.randn(n, H, D, device=dev, dtype=torch.bfloat16, generator=gen)
        k = torch.randn(length, HKV, D, device=dev, dtype=torch.bfloat16, generator=gen)
        v = torch.randn(length, HKV, D, device=dev, dtype=torch.bfloat16, generator=gen)
        # Paged cache: slot 0 reserved, the sequence's keys at slots 1..L in order.
        k_cache = torch.cat([torch.zeros_like(k[:1]), k])
        v_cache = torch.cat([torch.zeros_like(v[:1]), v])
        kv_indices = torch.arange(1, length + 1, device=dev, dtype=torch.int64)
        qo = torch.tensor([0, n], device=dev, dtype=torch.int32)
        kvp = torch.tensor([0, length], device=dev, dtype=torch.int32)
        ref = None
        for label, backend in backends.items():
            try:
                fn = sdpa(q, k, v, prefix, backend)
                out = fn()
                ms = do_bench(fn, warmup=50, rep=300, return_mode="median")
            except Exception as e:  # noqa: BLE001 - a backend this torch lacks at this shape
                print(f"{name:10s} sdpa-{label:9s} unavailable: {str(e)[:80]}", flush=True)
                continue
            if ref is None:
                ref = out[0].transpose(0, 1).float()
            rows.append(
                {
                    "shape": name,
                    "kernel": f"sdpa-{label}",
                    "ms": ms,
                    "tflop_s": flop(n, prefix) / ms / 1e9,
                }
            )
            print(
                f"{name:10s} sdpa-{label:9s} {ms:8.3f} ms {rows[-1]['tflop_s']:6.1f} TFLOP/s",
                flush=True,
            )
        inputs = (q, k_cache, v_cache, qo, kvp, kv_indices, D**-0.5)
        for cfg in CONFIGS:

            def run(cfg=cfg, inputs=inputs):
                return tri.extend(*inputs, launch=cfg)

            try:
                out = run().float()
            except Exception as e:  # noqa: BLE001 - e.g. out of shared memory
                print(f"{name:10s} {cfg} failed: {str(e)[:100]}", flush=True)
                continue
            err = ((out - ref).norm() / ref.norm()).item() if ref is not None else float("nan")
            ok = bool(torch.isfinite(out).all()) and not err > 1e-2
            ms = do_bench(run, warmup=50, rep=300, return_mode="median") if ok else float("nan")
            row = {
                "shape": name,
                "kernel": "triton",
                **cfg,
                "ms": ms,
                "rel_err": err,
                "tflop_s": flop(n, prefix) / ms / 1e9,
            }
            rows.append(row)
            tag = "m{block_m} n{block_n} w{num_warps} s{num_stages}".format(**cfg)
            print(
                f"{name:10s} triton {tag:18s} {ms:8.3f} ms {row['tflop_s']:6.1f} TFLOP/s "
                f"err {err:.1e}",
                flush=True,
            )
        del q, k, v, k_cache, v_cache, inputs
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
