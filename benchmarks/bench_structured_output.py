"""Time per output token with a JSON schema against without, at batch 1 and 16 (CPU, xeon).

A grammar ends generation by itself, so ignore_eos cannot equalise lengths: the constrained run
goes first and each unconstrained request then gets `max_new_tokens` = its constrained twin's
length with ignore_eos, so both runs decode the same number of tokens in the same batches.
The two runs alternate over the repeats (this machine is shared; drift hits both), and the
figure per side is the median over repeats of the batch's decode time per output token:
sum over requests of (e2e - ttft) / sum of (tokens - 1), i.e. a step's time divided by the
requests in it.

`--profile` also times the grammar's own per-step work outside the engine, on the same
schema and batch: filling the masks, applying them with the backend's op, advancing the
matchers.

    python benchmarks/bench_structured_output.py --batch 1 16 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from sglang.benchmark.report import git_commit

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "email": {"type": "string", "pattern": "^[a-z]{1,12}@[a-z]{1,12}\\.com$"},
        "city": {"type": "string", "maxLength": 24},
        "hobbies": {
            "type": "array",
            "items": {"type": "string", "maxLength": 20},
            "minItems": 3,
            "maxItems": 5,
        },
        "employed": {"type": "boolean"},
    },
    "required": ["name", "age", "email", "city", "hobbies", "employed"],
}
MAX_NEW = 256  # a cap only: every constrained output must end by its grammar
QUESTIONS = [
    "Describe a fictional person as JSON.",
    "Invent a character for a novel and give their details as JSON.",
    "Give the profile of a new employee as JSON.",
    "Describe your neighbour as JSON.",
]


def prompts(engine, n: int) -> list[str]:
    return [
        engine.tokenizer.apply_chat_template(
            [{"role": "user", "content": f"{QUESTIONS[i % len(QUESTIONS)]} (#{i})"}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for i in range(n)
    ]


def per_token_ms(outs: list[dict]) -> float:
    decode = sum(o["meta_info"]["e2e_latency"] - o["meta_info"]["ttft"] for o in outs)
    steps = sum(len(o["output_ids"]) - 1 for o in outs)
    return 1e3 * decode / steps


def run_pair(engine, texts, lengths, grammar_first: bool) -> tuple[float, float]:
    """(constrained, unconstrained) decode ms per output token over the batch `texts`."""
    constrained = {"temperature": 0, "max_new_tokens": MAX_NEW, "json_schema": json.dumps(SCHEMA)}
    free = [{"temperature": 0, "max_new_tokens": n, "ignore_eos": True} for n in lengths]
    runs = {}
    for kind in ("grammar", "free") if grammar_first else ("free", "grammar"):
        params = [constrained] * len(texts) if kind == "grammar" else free
        runs[kind] = engine.generate(texts, params)
    assert [len(o["output_ids"]) for o in runs["grammar"]] == lengths
    assert [len(o["output_ids"]) for o in runs["free"]] == lengths
    return per_token_ms(runs["grammar"]), per_token_ms(runs["free"])


def constrained_lengths(engine, texts: list[str]) -> list[int]:
    params = {"temperature": 0, "max_new_tokens": MAX_NEW, "json_schema": json.dumps(SCHEMA)}
    outs = engine.generate(texts, [params] * len(texts))
    ended = sum(o["meta_info"]["finish_reason"]["type"] == "stop" for o in outs)
    print(f"  batch {len(texts)}: {ended}/{len(outs)} constrained outputs ended by the grammar")
    return [len(o["output_ids"]) for o in outs]


def profile(engine, backend_name: str, batch: int) -> dict[str, float]:
    """The grammar's per-step work for `batch` requests, in ms, replayed in this process on
    the engine's own constrained outputs: filling the masks, the sampler's extra work with them
    (packing rows + grammar.apply_bitmask), and advancing the matchers."""
    from types import SimpleNamespace

    from sglang.backend.selection import select_platform
    from sglang.sampling.params import SamplingParams
    from sglang.sampling.sampler import SampleInput, Sampler
    from sglang.scheduler.grammar_manager import GrammarManager
    from sglang.scheduler.req import Req

    info = engine.server_info
    vocab = info["vocab_size"]
    platform = select_platform(info["backend"])
    ops = SimpleNamespace(
        apply_bitmask=platform.resolve("grammar.apply_bitmask").chosen.fn,
        sample=platform.resolve("sampling.sample").chosen.fn,
    )
    sampler = Sampler(ops, vocab)
    params = SamplingParams.from_dict(
        {"json_schema": json.dumps(SCHEMA), "temperature": 0, "max_new_tokens": MAX_NEW}
    )
    outputs = [
        o["output_ids"] for o in engine.generate(prompts(engine, batch), [params.__dict__] * batch)
    ]
    mgr = GrammarManager(backend_name, engine.tokenizer, vocab, info["eos_token_ids"])
    reqs = [Req(rid=str(i), prompt_ids=[1], params=params) for i in range(batch)]
    for r in reqs:
        mgr.submit(r)
        r.grammar_future.result()
    mgr.poll()
    t = {"fill_ms": 0.0, "sampler_extra_ms": 0.0, "advance_ms": 0.0}
    steps = max(len(o) for o in outputs)
    for k in range(steps):
        active = [(r, o[k]) for r, o in zip(reqs, outputs) if k < len(o)]
        logits = torch.randn(len(active), vocab)
        t0 = time.perf_counter()
        rows = mgr.bitmasks([r for r, _ in active])
        t1 = time.perf_counter()
        sampler(logits, [SampleInput(params, [1], [], None, frozenset(), bitmask=m) for m in rows])
        t2 = time.perf_counter()
        sampler(logits, [SampleInput(params, [1], [], None, frozenset()) for _ in rows])
        t3 = time.perf_counter()
        for r, tok in active:
            assert r.grammar.accept_token(tok)
        t4 = time.perf_counter()
        t["fill_ms"] += t1 - t0
        t["sampler_extra_ms"] += (t2 - t1) - (t3 - t2)
        t["advance_ms"] += t4 - t3
    mgr.shutdown()
    return {k: round(1e3 * v / steps, 3) for k, v in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--grammar-backend", default="xgrammar")
    ap.add_argument("--device", default="xeon")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    from sglang.engine.engine import Engine

    commit = git_commit()
    print(
        f"commit {commit}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"grammar backend {args.grammar_backend}"
    )
    with Engine(
        device=args.device, log_level="warning", grammar_backend=args.grammar_backend
    ) as engine:
        print(f"backend {engine.server_info['backend']} ({engine.server_info['device']})")
        warm = prompts(engine, 2)
        run_pair(engine, warm, constrained_lengths(engine, warm), True)  # compile, warm up
        print("| batch | tokens/request | no grammar ms/token | JSON schema ms/token | ratio |")
        print("|---|---|---|---|---|")
        for batch in args.batch:
            texts = prompts(engine, batch)
            lengths = constrained_lengths(engine, texts)
            with_g, without = [], []
            for i in range(args.repeat):
                g, p = run_pair(engine, texts, lengths, grammar_first=i % 2 == 0)
                with_g.append(g)
                without.append(p)
            g, p = statistics.median(with_g), statistics.median(without)
            mean = statistics.mean(lengths)
            print(f"| {batch} | {mean:.0f} | {p:.2f} | {g:.2f} | {g / p:.3f}x |", flush=True)
        if args.profile:
            for batch in args.batch:
                print(
                    f"grammar work per step, batch {batch}:",
                    profile(engine, args.grammar_backend, batch),
                )


if __name__ == "__main__":
    main()
