"""CPU decode throughput on the default model (SmolLM2-135M-Instruct GGUF): sglang vs llama.cpp
vs transformers, on the same machine with the same thread count.

    python benchmarks/bench_cpu_decode.py [--threads 2] [--dtype bfloat16] [--output 128]
        [--engines sglang,llamacpp,transformers] [--quantization int4] [--json out.jsonl]

Without --dtype / --quantization the engine runs at its defaults, as `sglang serve` does (on
this GGUF: the backend's preferred dtype and the file's 4-bit layers kept 4-bit); transformers
then runs in bfloat16.

Workloads:
- batch-1 decode: one request, a ~64-token prompt, `--output` new tokens (greedy, EOS ignored);
  tokens/s = output tokens / (time after the first token), i.e. decode only.
- 16 concurrent: 16 different prompts submitted at once, each `--output` tokens; aggregate
  tokens/s = all output tokens / wall time (prefill included).
llama.cpp runs through llama-cpp-python on the same GGUF file (its native Q4_1 weights);
transformers runs LlamaForCausalLM with the same dequantized weights the engine loads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from sglang.benchmark.report import git_commit

PROMPT = (
    "You are a helpful assistant. Write a detailed story about a lighthouse keeper who finds "
    "a message in a bottle, describing the sea, the weather, the keeper's daily routine and "
    "what happens after the message is read. Story:"
)


def prompts(n: int) -> list[str]:
    return [f"{PROMPT} (variant {i})" for i in range(n)]


def bench_sglang(args) -> dict:
    from sglang.engine.engine import Engine

    params = {"max_new_tokens": args.output, "temperature": 0, "ignore_eos": True}
    chosen = {k: v for k, v in (("dtype", args.dtype), ("quantization", args.quantization)) if v}
    with Engine(device="xeon", log_level="warning", **chosen) as e:
        info = e.server_info
        print(f"sglang: dtype={info.get('dtype')} quantization={info.get('quantization')}")
        e.generate(PROMPT, {**params, "max_new_tokens": 8})  # warm-up
        chunks, start = [], time.perf_counter()
        for chunk in e.generate(PROMPT, params, stream=True):
            chunks.append((time.perf_counter(), len(chunk["output_ids"])))
        first_t, first_n = chunks[0]
        single = (chunks[-1][1] - first_n) / (chunks[-1][0] - first_t)
        t0 = time.perf_counter()
        outs = e.generate(prompts(16), params)
        wall = time.perf_counter() - t0
        total = sum(len(o["output_ids"]) for o in outs)
    return {"batch1_tok_s": single, "concurrent16_tok_s": total / wall, "ttft_s": first_t - start}


def bench_llamacpp(args) -> dict:
    from llama_cpp import Llama
    from sglang.model_loader import default_model_path

    llm = Llama(
        model_path=default_model_path(),
        n_threads=args.threads,
        n_ctx=4096,
        n_batch=512,
        verbose=False,
        seed=0,
    )
    # Streamed like the engine's run, decode only: tokens after the first over the time after
    # it (llama-cpp-python 0.3.36's low-level eval() crashes, so its completion API is timed).
    llm.create_completion(PROMPT, max_tokens=8, temperature=0, top_k=1)  # warm-up
    stamps = []
    for _ in llm.create_completion(
        PROMPT,
        max_tokens=args.output,
        temperature=0,
        top_k=1,
        stream=True,
        logit_bias={llm.token_eos(): -1e9},
    ):
        stamps.append(time.perf_counter())
    single = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    # llama-cpp-python serves one sequence at a time: 16 requests run back to back.
    t = time.perf_counter()
    total = 0
    for p in prompts(16):
        out = llm.create_completion(p, max_tokens=args.output, temperature=0, top_k=1)
        total += out["usage"]["completion_tokens"]
    return {"batch1_tok_s": single, "concurrent16_tok_s": total / (time.perf_counter() - t)}


def bench_transformers(args) -> dict:
    import torch
    import transformers as tf
    from sglang.model_loader import (
        default_model_path,
        iterate_weights,
        load_model_config,
        load_tokenizer,
        resolve_source,
    )

    dtype = getattr(torch, args.dtype or "bfloat16")
    source = resolve_source(default_model_path())
    config = load_model_config(source, "float32")
    model = tf.LlamaForCausalLM(config.raw)
    model.load_state_dict(dict(iterate_weights(source, hf_config=config.raw)), strict=False)
    model.tie_weights()
    model = model.to(dtype).eval()
    tok = load_tokenizer(source)
    kw = dict(max_new_tokens=args.output, min_new_tokens=args.output, do_sample=False)
    with torch.no_grad():
        ids = torch.tensor([tok.encode(PROMPT)])
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        t = time.perf_counter()
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        prefill = time.perf_counter() - t
        t = time.perf_counter()
        model.generate(ids, **kw)
        single = (args.output - 1) / (time.perf_counter() - t - prefill)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        batch = tok(prompts(16), return_tensors="pt", padding=True)
        t = time.perf_counter()
        out = model.generate(**batch, **kw)
        total = (out.shape[1] - batch["input_ids"].shape[1]) * 16
    return {"batch1_tok_s": single, "concurrent16_tok_s": total / (time.perf_counter() - t)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--dtype", default=None, help="sglang: the engine's default when unset")
    p.add_argument("--output", type=int, default=128)
    p.add_argument("--engines", default="sglang,llamacpp,transformers")
    p.add_argument(
        "--quantization", default=None, help="sglang only: e.g. int4 (unset: the engine's default)"
    )
    p.add_argument("--json", default=None)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    commit = git_commit()
    print(
        f"threads={a.threads} dtype={a.dtype} quantization={a.quantization} output={a.output} "
        f"commit={commit} "
        f"torch={torch.__version__} machine={platform.processor() or platform.machine()}"
    )
    runners = {
        "sglang": bench_sglang,
        "llamacpp": bench_llamacpp,
        "transformers": bench_transformers,
    }
    rows = []
    for name in a.engines.split(","):
        r = runners[name](a)
        r.update(
            engine=name,
            threads=a.threads,
            dtype=a.dtype,
            output=a.output,
            commit=commit,
            quantization=a.quantization if name == "sglang" else None,
        )
        rows.append(r)
        print(
            f"{name:>13}: batch-1 {r['batch1_tok_s']:.1f} tok/s, "
            f"16 concurrent {r['concurrent16_tok_s']:.1f} tok/s",
            flush=True,
        )
    if a.json:
        with open(a.json, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
