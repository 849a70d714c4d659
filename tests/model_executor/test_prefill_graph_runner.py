"""The prefill graph runner on a CPU backend: its runtime returns the eager function from
`capture_graph`, so the whole path (static buffers, the padding sequence on the reserved slot,
empty trailing sequences, dropped logits rows, cached prefixes) runs here and must give the
tokens of plain eager prefill."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sglang.forward_batch import ForwardMode  # noqa: E402
from sglang.model_executor.prefill_graph_runner import (  # noqa: E402
    PrefillGraphRunner,
    prefill_token_sizes,
)
from test_graph_runner import NEW, generate, scheduler_for  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model("llama", str(tmp_path_factory.mktemp("llama")))


def test_prefill_graphs_give_the_eager_tokens(model_dir):
    scheduler = scheduler_for(model_dir, "reference")
    runner = scheduler.runner
    assert runner.prefill_graph_runner is None  # CPU runtimes capture nothing by default
    eager = generate(scheduler)
    # All four prompts (21 tokens) go in one prefill, padded to 32 in the graph of 32.
    assert runner.init_prefill_graph_runner([8, 32])
    replayed = generate(scheduler)
    assert replayed == eager
    assert [len(replayed[f"r{i}"]) for i in range(len(NEW))] == NEW
    assert runner.prefill_graph_runner.replays == 1


def test_prefill_graphs_with_cached_prefixes(model_dir):
    """With the radix cache the second round's prompts start from cached prefixes: the graphs
    read the batch's whole KV (prefix slots included) from the static kv_indices."""
    scheduler = scheduler_for(model_dir, "reference")
    scheduler.args = dataclasses.replace(scheduler.args, disable_radix_cache=False)
    from sglang.cache.radix_cache import RadixCache

    scheduler.cache = RadixCache(scheduler.runner.allocator)
    scheduler.kv.cache = scheduler.cache
    eager = generate(scheduler)
    scheduler.runner.init_prefill_graph_runner([8, 16, 32])
    first, second = generate(scheduler), generate(scheduler)
    assert first == second == eager
    assert scheduler.stats.cached_tokens > 0
    assert scheduler.runner.prefill_graph_runner.replays >= 2


def test_batches_beyond_the_graphs_run_eagerly(model_dir):
    scheduler = scheduler_for(model_dir, "reference")
    runner = scheduler.runner
    eager = generate(scheduler)
    graphs = PrefillGraphRunner(runner, [16], max_seqs=4)  # 4 prompts need 5 sequences
    assert graphs.capture()
    runner.prefill_graph_runner = graphs
    model, eager_extends = runner.model, []

    def counted(batch):
        eager_extends.append(batch.mode == ForwardMode.EXTEND)
        return model(batch)

    runner.model = counted
    try:
        assert generate(scheduler) == eager
    finally:
        runner.model = model
    assert graphs.replays == 0 and sum(eager_extends) == 1


def test_prefill_token_sizes():
    assert prefill_token_sizes(512) == (16, 32, 64, 96, 128, 192, 256, 384, 512)
    assert prefill_token_sizes(100) == (16, 32, 64, 96, 100)
    assert prefill_token_sizes(16) == (16,)


def test_a_failed_capture_leaves_eager_prefill(model_dir):
    scheduler = scheduler_for(model_dir, "reference")
    runner = scheduler.runner

    def broken(fn):
        raise RuntimeError("operation not permitted when stream is capturing")

    runner.runtime.capture_graph = broken
    try:
        assert not runner.init_prefill_graph_runner([16, 32])
    finally:
        del runner.runtime.capture_graph
    assert runner.prefill_graph_runner is None
    assert len(generate(scheduler)["r1"]) == NEW[1]
