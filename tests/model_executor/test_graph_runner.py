"""The decode graph runner on CPU backends: their runtimes return the eager function from
`capture_graph`, so the whole path (static buffers, padding rows on the reserved slot, refills
between replays, dropping padded logits) runs here and must give the tokens of plain eager
decode."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from sglang.engine.scheduler_process import build_scheduler  # noqa: E402
from sglang.model_executor.graph_runner import DecodeGraphRunner, graph_batch_sizes  # noqa: E402
from sglang.sampling.params import SamplingParams  # noqa: E402
from sglang.scheduler.req import Req  # noqa: E402
from sglang.server_args import ServerArgs  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402

# Different lengths and budgets: the batch shrinks 4 -> 3 -> 1, so sizes 3 pads to 4.
PROMPTS = [[1, 17, 33, 250, 99, 7, 412, 5], [1, 300, 301, 302], [1, 5, 6], [1, 9, 8, 7, 6, 5]]
NEW = [12, 20, 6, 12]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def scheduler_for(path: str, backend: str):
    args = ServerArgs.from_kwargs(
        model_path=path,
        device=backend,
        dtype="float32",
        skip_tokenizer_init=True,
        max_total_tokens=1024,
        disable_radix_cache=True,
        log_level="warning",
    )
    scheduler, _ = build_scheduler(args)
    return scheduler


def generate(scheduler) -> dict[str, list[int]]:
    for i, (prompt, new) in enumerate(zip(PROMPTS, NEW)):
        params = SamplingParams.from_dict(
            {"max_new_tokens": new, "temperature": 0.0, "ignore_eos": True}
        )
        assert scheduler.add_request(Req(f"r{i}", prompt, params, scheduler.eos_ids)) is None
    tokens: dict[str, list[int]] = {}
    while scheduler.has_work():
        for out in scheduler.step():
            tokens.setdefault(out.rid, []).extend(out.new_token_ids)
    scheduler.check_idle()
    return tokens


def installed(backend: str) -> bool:
    from sglang.backend.discovery import discover

    found = discover().backends.get(backend)
    return found is not None and found.available


@pytest.mark.parametrize(
    "backend",
    [
        "reference",
        pytest.param(
            "xeon",
            marks=pytest.mark.skipif(
                not installed("xeon"), reason="the xeon backend is not installed"
            ),
        ),
    ],
)
def test_graph_runner_gives_the_eager_tokens(model_dir, backend):
    scheduler = scheduler_for(model_dir, backend)
    runner = scheduler.runner
    assert runner.graph_runner is None  # CPU runtimes capture nothing by default
    eager = generate(scheduler)
    assert runner.init_graph_runner([1, 2, 4])
    graphs = runner.graph_runner
    assert graphs.batch_sizes == [1, 2, 4]
    replayed = generate(scheduler)
    assert replayed == eager
    assert [len(replayed[f"r{i}"]) for i in range(len(NEW))] == NEW
    decode_steps = max(NEW) - 1
    assert graphs.replays == decode_steps


def test_batches_beyond_the_largest_graph_run_eagerly(model_dir):
    scheduler = scheduler_for(model_dir, "reference")
    eager = generate(scheduler)
    assert scheduler.runner.init_graph_runner([1, 2])
    assert generate(scheduler) == eager
    # Steps with 3 or 4 running requests were eager; the last ones (2 and 1) replayed.
    assert 0 < scheduler.runner.graph_runner.replays < max(NEW) - 1


def test_failed_capture_leaves_eager_decode(model_dir):
    scheduler = scheduler_for(model_dir, "reference")
    runner = scheduler.runner

    def broken(fn):
        raise RuntimeError("operation not permitted when stream is capturing")

    runner.runtime.capture_graph = broken
    try:
        assert not runner.init_graph_runner([1, 2, 4])
    finally:
        del runner.runtime.capture_graph
    assert runner.graph_runner is None
    assert len(generate(scheduler)["r1"]) == NEW[1]


def test_unused_sizes_are_not_captured(model_dir):
    scheduler = scheduler_for(model_dir, "reference")
    scheduler.runner.max_running_requests = 20
    graphs = DecodeGraphRunner(scheduler.runner, graph_batch_sizes(256))
    assert graphs.batch_sizes == [1, 2, 4, 8, 16, 24]


def test_graph_batch_sizes():
    assert graph_batch_sizes(256) == (1, 2, 4, 8, 16, 24, 32, *range(48, 257, 16))
    assert graph_batch_sizes(8) == (1, 2, 4, 8)
    assert graph_batch_sizes(40) == (1, 2, 4, 8, 16, 24, 32, 40)
    assert graph_batch_sizes(1) == (1,)


def test_server_args_take_graph_sizes_from_the_backend():
    from sglang.backend import ServerDefaults
    from sglang.engine.settings import resolve

    args = ServerArgs()
    args = resolve(args, ServerDefaults(graph_batch_sizes=(1, 2, 4, 8)))
    assert args.cuda_graph_bs == [1, 2, 4, 8] and args.cuda_graph_max_bs == 8
    args = ServerArgs(cuda_graph_max_bs=48)
    args = resolve(args, ServerDefaults(graph_batch_sizes=(1, 2, 4, 8)))
    assert args.cuda_graph_bs == [1, 2, 4, 8, 16, 24, 32, 48]


def graph_backend() -> str | None:
    """An available backend whose runtime captures graphs (cuda on a GPU machine), or None."""
    from sglang.backend.discovery import discover

    for b in discover().backends.values():
        if b.available and b.capabilities is not None and b.capabilities.graph_capture:
            return b.name
    return None


@pytest.mark.skipif(graph_backend() is None, reason="no backend with graph capture available")
@pytest.mark.parametrize(
    "dtype, compile", [("float32", False), ("bfloat16", False), ("float32", True)]
)
def test_captured_graphs_give_the_eager_tokens(model_dir, dtype, compile):
    """Graphs on and off: the same greedy tokens, batches padded (3 -> 4) included; with
    --enable-torch-compile, graphs of sizes 1 and 2 capture the compiled model."""
    backend = graph_backend()
    results = []
    for disable in (True, False):
        args = ServerArgs.from_kwargs(
            enable_torch_compile=compile and not disable,
            torch_compile_max_bs=2,
            model_path=model_dir,
            device=backend,
            dtype=dtype,
            skip_tokenizer_init=True,
            max_total_tokens=1024,
            disable_radix_cache=True,
            log_level="warning",
            disable_cuda_graph=disable,
            cuda_graph_bs=[1, 2, 4, 8],
        )
        scheduler, _ = build_scheduler(args)
        graphs = scheduler.runner.graph_runner
        assert (graphs is None) == disable
        results.append(generate(scheduler))
        if graphs is not None:  # the overlap scheduler launches one step past the last finish
            assert graphs.replays == max(NEW) - 1 + scheduler.overlap
            assert sorted(graphs.compiled_sizes) == ([1, 2] if compile else [])
            # The four prompts' prefill (21 tokens) replayed the prefill graph of 32 tokens.
            assert scheduler.runner.prefill_graph_runner.replays == 1
    assert results[0] == results[1]


def test_torch_compile_in_the_graphs_gives_the_eager_tokens(model_dir):
    """--enable-torch-compile: the sizes up to --torch-compile-max-bs capture the compiled
    model (inductor's CPU code here), the larger ones the plain model; tokens as eager."""
    scheduler = scheduler_for(model_dir, "reference")
    eager = generate(scheduler)
    runner = scheduler.runner
    plain = runner.args
    runner.args = dataclasses.replace(plain, enable_torch_compile=True, torch_compile_max_bs=2)
    try:
        assert runner.init_graph_runner([1, 2, 4])
        assert sorted(runner.graph_runner.compiled_sizes) == [1, 2]
        assert generate(scheduler) == eager
        assert runner.graph_runner.replays == max(NEW) - 1
    finally:
        runner.args = plain


def test_torch_compile_flags():
    import argparse

    from sglang.cli.args import add_cli_args, from_cli

    parser = argparse.ArgumentParser()
    add_cli_args(parser)
    args = from_cli(parser.parse_args(["--enable-torch-compile", "--torch-compile-max-bs", "8"]))
    assert args.enable_torch_compile and args.torch_compile_max_bs == 8
    with pytest.raises(ValueError, match="torch-compile-max-bs"):
        ServerArgs.from_kwargs(torch_compile_max_bs=0)


def test_a_failed_compile_keeps_the_graphs_of_the_plain_model(model_dir, monkeypatch):
    """A compile error (an inductor or Triton failure on some kernel) is logged and the
    graphs capture the uncompiled model: decode keeps its graphs and its tokens."""
    import torch

    def broken(batch):
        raise RuntimeError("InductorError: a kernel failed to compile")

    scheduler = scheduler_for(model_dir, "reference")
    eager = generate(scheduler)
    runner = scheduler.runner
    monkeypatch.setattr(torch, "compile", lambda model, **kw: broken)
    monkeypatch.setattr(runner, "args", dataclasses.replace(runner.args, enable_torch_compile=True))
    assert runner.init_graph_runner([1, 2, 4])
    assert runner.graph_runner.compiled_sizes == []
    assert generate(scheduler) == eager
