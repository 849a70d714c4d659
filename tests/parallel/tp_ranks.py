"""Running tiny models through the ModelRunner on one rank of a tensor-parallel group (or on
one process), for the parity tests of tests/parallel."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

PROMPT = [1, 17, 33, 250, 99, 7, 41, 5, 200, 13, 77, 120]
DECODE_STEPS = 6


def model_logits(path: str, platform, parallel, dtype: str = "float32", layout=None):
    """(prefill logits [len(PROMPT), V], decode logits [DECODE_STEPS, V], greedy tokens):
    prefill then greedy decode steps fed the runner's own tokens. `layout` (a dict) receives
    what this rank holds (ModelRunner.layout)."""
    from sglang.conformance.model import Built, forward_batch
    from sglang.engine.settings import resolve
    from sglang.forward_batch import ForwardMode
    from sglang.model_executor.model_runner import ModelRunner
    from sglang.model_loader import load_model_config, resolve_source
    from sglang.server_args import ServerArgs

    args = ServerArgs.from_kwargs(
        model_path=path,
        device=platform.name,
        dtype=dtype,
        max_total_tokens=128,
        disable_cuda_graph=True,
    )
    args = resolve(args, platform.backend.server_defaults(1 << 34))
    source = resolve_source(path)
    runner = ModelRunner(args, platform, load_model_config(source, dtype), source, parallel)
    # Every rank runs the same forwards here, in lock-step by construction: rank 0's plan
    # broadcast (the scheduler path, tests/parallel/test_tp_engine.py) is not wanted.
    runner.plan = None
    if layout is not None:
        layout.update(runner.layout)
    built = Built(runner.model, runner.device, runner.dtype, runner.runtime)
    slots = [list(range(1, len(PROMPT) + DECODE_STEPS + 1))]
    with torch.inference_mode():
        batch = forward_batch(
            ForwardMode.EXTEND, built, runner.kv_cache, [(PROMPT, 0)], slots, True
        )
        prefill = runner.forward(batch).to("cpu", torch.float64)
        tok, steps, fed = int(prefill[-1].argmax()), [], []
        for i in range(DECODE_STEPS):
            fed.append(tok)
            batch = forward_batch(
                ForwardMode.DECODE,
                built,
                runner.kv_cache,
                [([tok], len(PROMPT) + i)],
                slots,
                False,
            )
            out = runner.forward(batch).to("cpu", torch.float64)
            steps.append(out[0])
            tok = int(out[0].argmax())
    return prefill, torch.stack(steps), fed


def run_rank(rank: int, world: int, init_method: str, paths, backend: str, out: str) -> None:
    """One rank: join the group through the backend's communicator, run every model, rank 0
    saves the results to `out`. A path may come as (path, ep_size): that model's experts are
    split over ep_size of the ranks (the same group, other expert groups)."""
    torch.set_num_threads(1)
    import dataclasses

    from sglang.backend.selection import select_platform
    from sglang.parallel import init_parallel
    from sglang.parallel.state import expert_groups

    platform = select_platform(backend)
    state = init_parallel(platform.backend, rank, world, init_method)
    results = []
    for p in paths:
        if isinstance(p, str):
            results.append(model_logits(p, platform, state))
            continue
        path, ep = p
        ep_group, moe_tp = expert_groups(state.tp, ep)
        sub = dataclasses.replace(state, ep=ep_group, moe_tp=moe_tp)
        layout = {}
        results.append((*model_logits(path, platform, sub, layout=layout), layout))
    if rank == 0:
        torch.save(results, out)
    state.close()
