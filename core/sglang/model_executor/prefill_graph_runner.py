"""PrefillGraphRunner: short extend forwards replayed from graphs, one per token bucket.

An eager prefill of a short prompt is bound by host time: an 8B model's forward is ~450
kernel launches (~13 ms of Python and launch work on an H200) for ~4 ms of device work at 16
tokens. Extend batches of at most `max_tokens` new tokens and fewer than `max_seqs`
sequences run instead in the graph of the smallest captured token count T >= N, whose inputs
are static buffers (graph_runner.py's scheme, with the sequence count fixed at max_seqs):

    input_ids, positions, out_cache_loc  [T_max]         tokens 0..N-1 real, N..T-1 padding
    qo_indptr, kv_indptr                 [max_seqs + 1]  int32, as ForwardBatch
    kv_indices                           [kv_capacity]   the batch's slots, then the padding's
    logits_indices                       [max_seqs]      the rows wanted, then row 0

The batch's B sequences come first; sequence B holds the T - N padding tokens (token 0 at
position 0, KV written to the reserved slot 0, attending only to slot 0, so finite and
touching no request's KV); sequences B+1.. are empty (no tokens, no KV). Logits rows past the
batch's are dropped. The extend kernels size their grids from T and max_seqs only.

Off with --disable-cuda-graph, and where the runtime captures no graphs; the token limit is
SGLANG_PREFILL_GRAPH_MAX_TOKENS (0 turns prefill graphs off).
"""

from __future__ import annotations

import bisect
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from sglang.forward_batch import ForwardBatch, ForwardMode

logger = logging.getLogger(__name__)

GIB = 1 << 30
PREFILL_GRAPH_MAX_TOKENS = 512
"""Largest bucket by default: past ~500 tokens an 8B prefill's device time exceeds its
eager host time, so the launches hide behind the kernels and a graph saves little."""
PREFILL_GRAPH_MAX_SEQS = 8  # sequences per graph, the padding one included


def prefill_graph_max_tokens() -> int:
    return int(os.environ.get("SGLANG_PREFILL_GRAPH_MAX_TOKENS", PREFILL_GRAPH_MAX_TOKENS))


def prefill_token_sizes(max_tokens: int) -> tuple[int, ...]:
    """16, 32, 64, then 1.5x and 2x each power of two (96, 128, 192, 256, 384, ...), below
    max_tokens, and max_tokens: past 64 tokens padding costs at most a third of a bucket."""
    sizes, power = [16, 32, 64], 64
    while sizes[-1] < max_tokens:
        sizes += [power * 3 // 2, power * 2]
        power *= 2
    return tuple(t for t in sizes if t < max_tokens) + (max_tokens,)


class PrefillGraphRunner:
    def __init__(
        self,
        runner: Any,
        token_sizes: Sequence[int],
        max_seqs: int = PREFILL_GRAPH_MAX_SEQS,
        kv_capacity: int | None = None,
    ) -> None:
        """`runner` is the ModelRunner. `kv_capacity`: entries of the static kv_indices buffer
        (default: max_seqs requests at full context, capped at twice the KV pool); a batch
        whose KV (cached prefixes included) does not fit runs eagerly."""
        self.runner = runner
        self.runtime = runner.runtime
        self.token_sizes = sorted({int(t) for t in token_sizes if t > 0})
        if not self.token_sizes or max_seqs < 2:
            raise ValueError("prefill graphs need token sizes and at least two sequences")
        self.max_tokens = self.token_sizes[-1]
        self.max_seqs = max_seqs
        if kv_capacity is None:
            pool = runner.allocator.total_size
            kv_capacity = min(max_seqs * runner.context_len, 2 * pool) + self.max_tokens
        self.kv_capacity = kv_capacity
        self.graphs: dict[int, Callable[[], torch.Tensor]] = {}
        self.replays = 0

    # --- capture -----------------------------------------------------------------------------
    @torch.inference_mode()
    def capture(self) -> bool:
        """Capture every token size, largest first. Returns False, with graphs off, when a
        capture fails."""
        dev, t, s = self.runner.device, self.max_tokens, self.max_seqs
        i64 = dict(dtype=torch.int64, device=dev)
        self.input_ids = torch.zeros(t, **i64)
        self.positions = torch.zeros(t, **i64)
        self.out_cache_loc = torch.zeros(t, **i64)
        self.qo_indptr = torch.zeros(s + 1, dtype=torch.int32, device=dev)
        self.kv_indptr = torch.zeros(s + 1, dtype=torch.int32, device=dev)
        self.kv_indices = torch.zeros(self.kv_capacity, **i64)
        self.logits_indices = torch.zeros(s, **i64)
        free_before = self.runtime.memory_info()[0]
        start = time.perf_counter()
        for size in reversed(self.token_sizes):
            batch = self._static_batch(size)
            self._fill_padding(0, 0, 0, size)  # all padding: one sequence of `size` tokens
            try:
                self.graphs[size] = self.runtime.capture_graph(
                    lambda batch=batch: self.runner.model(batch)
                )
            except Exception as e:  # noqa: BLE001 - any capture failure means eager prefill
                logger.warning("prefill graph capture failed at %d tokens: %r", size, e)
                self.graphs.clear()
                self.runtime.synchronize()
                return False
        self.runtime.synchronize()
        logger.info(
            "captured prefill graphs for %d token sizes %s (up to %d sequences) in %.2f s "
            "(%.2f GiB)",
            len(self.graphs),
            self.token_sizes,
            self.max_seqs - 1,
            time.perf_counter() - start,
            (free_before - self.runtime.memory_info()[0]) / GIB,
        )
        return True

    def _static_batch(self, size: int) -> ForwardBatch:
        return ForwardBatch(
            mode=ForwardMode.EXTEND,
            batch_size=self.max_seqs,
            input_ids=self.input_ids[:size],
            positions=self.positions[:size],
            out_cache_loc=self.out_cache_loc[:size],
            qo_indptr=self.qo_indptr,
            kv_indptr=self.kv_indptr,
            kv_indices=self.kv_indices,
            logits_indices=self.logits_indices,
            kv_cache=self.runner.kv_cache,
        )

    def _fill_padding(self, seqs: int, tokens: int, kv_total: int, size: int) -> None:
        """Sequence `seqs` takes tokens tokens..size-1 (on slot 0), later sequences are empty."""
        pad = size - tokens
        self.input_ids[tokens:size].zero_()
        self.positions[tokens:size].zero_()
        self.out_cache_loc[tokens:size].zero_()
        self.kv_indices[kv_total : kv_total + pad].zero_()
        self.qo_indptr[seqs + 1 :].fill_(size)
        self.kv_indptr[seqs + 1 :].fill_(kv_total + pad)

    # --- replay ------------------------------------------------------------------------------
    def can_run(self, batch: ForwardBatch) -> bool:
        return (
            bool(self.graphs)
            and batch.mode == ForwardMode.EXTEND
            and 0 < batch.num_tokens <= self.max_tokens
            and batch.batch_size < self.max_seqs
            and 0 < batch.logits_indices.numel() <= self.max_seqs
            and batch.kv_indices.numel() + self.max_tokens <= self.kv_capacity
        )

    def replay(self, batch: ForwardBatch) -> torch.Tensor:
        """Logits [len(batch.logits_indices), vocab] (a view of the graph's output: valid until
        the next replay)."""
        n, b = batch.num_tokens, batch.batch_size
        size = self.token_sizes[bisect.bisect_left(self.token_sizes, n)]
        kv_total = batch.kv_indices.numel()
        rows = batch.logits_indices.numel()
        self.input_ids[:n].copy_(batch.input_ids, non_blocking=True)
        self.positions[:n].copy_(batch.positions, non_blocking=True)
        self.out_cache_loc[:n].copy_(batch.out_cache_loc, non_blocking=True)
        self.qo_indptr[: b + 1].copy_(batch.qo_indptr, non_blocking=True)
        self.kv_indptr[: b + 1].copy_(batch.kv_indptr, non_blocking=True)
        self.kv_indices[:kv_total].copy_(batch.kv_indices, non_blocking=True)
        self.logits_indices[:rows].copy_(batch.logits_indices, non_blocking=True)
        self.logits_indices[rows:].zero_()
        self._fill_padding(b, n, kv_total, size)
        self.replays += 1
        return self.graphs[size]()[:rows]
