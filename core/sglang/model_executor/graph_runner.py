"""DecodeGraphRunner: decode forwards replayed from graphs captured once per batch size.

The runtime captures (`DeviceRuntime.capture_graph`); this module owns what a graph reads and
writes. Every graph reads the same static input buffers and sees them through a ForwardBatch of
views, one per captured batch size bs:

    input_ids, positions, out_cache_loc  [max_bs]        rows 0..bs-1 of the graph of size bs
    kv_indptr                            [max_bs + 1]    int32, as ForwardBatch
    kv_indices                           [kv_capacity]   the batch's slots, then the padding's
    qo_indptr, logits_indices            arange          one new token and one logit per row

A decode batch of B sequences runs in the smallest captured size bs >= B. Rows B..bs-1 are
padding: token 0 at position 0, written to the reserved padding slot 0 of the KV cache, and
attending to that one slot (length 1), so they stay finite and touch no request's KV; their
logits are dropped. What may change between replays is only the buffers' contents: attention
kernels must size their grids from shapes, never from the lengths (see the cuda kernels).

On a runtime without graphs `capture_graph` returns the function itself, so the same path runs
eagerly from the static buffers: CPU tests exercise padding and buffer refills exactly.
A capture that fails (a kernel that synchronises with the host, say) turns graphs off with the
reason in the log; the model then runs eagerly.

`--enable-torch-compile` (SGLang's flag): the graphs of batch sizes up to
`--torch-compile-max-bs` capture `torch.compile(model)` instead of the model, specialised to
that batch size (dynamic=False) and compiled by one run outside the capture (compilation
synchronises). The backends' kernels are opaque to the compiler (Triton launches, C++ ops);
what it can fuse is the torch code between them.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from sglang.forward_batch import ForwardBatch, ForwardMode

logger = logging.getLogger(__name__)

GIB = 1 << 30


def graph_batch_sizes(max_bs: int) -> tuple[int, ...]:
    """1, 2, 4, 8, 16, 24, 32, then steps of 16, up to and including max_bs."""
    sizes = [bs for bs in (1, 2, 4, 8, 16, 24, 32) if bs <= max_bs]
    sizes += range(48, max_bs + 1, 16)
    if not sizes or sizes[-1] != max_bs:
        sizes.append(max_bs)
    return tuple(sizes)


class DecodeGraphRunner:
    def __init__(
        self,
        runner: Any,
        batch_sizes: Sequence[int],
        kv_capacity: int | None = None,
    ) -> None:
        """`runner` is the ModelRunner (its model, runtime, KV cache and context length).
        Sizes beyond the first one that holds max_running_requests are never used and are not
        captured. `kv_capacity`: entries of the static kv_indices buffer (default: every
        running request at full context, capped at twice the KV pool, since a batch reads
        each slot once unless requests share a cached prefix); a larger batch runs eagerly."""
        self.runner = runner
        self.runtime = runner.runtime
        sizes = sorted({int(bs) for bs in batch_sizes if bs > 0})
        if not sizes:
            raise ValueError("no batch sizes to capture")
        limit = runner.max_running_requests or sizes[-1]
        cut = bisect.bisect_left(sizes, limit)
        self.batch_sizes = sizes[: cut + 1]
        self.max_bs = self.batch_sizes[-1]
        if kv_capacity is None:
            pool = runner.allocator.total_size
            kv_capacity = min(self.max_bs * runner.context_len, 2 * pool + self.max_bs)
        self.kv_capacity = kv_capacity
        self.graphs: dict[int, Callable[[], torch.Tensor]] = {}
        self.replays = 0
        args = runner.args
        self.compile_max_bs = args.torch_compile_max_bs if args.enable_torch_compile else 0
        self.compiled_sizes: list[int] = []

    def _compiled_model(self) -> Callable[[ForwardBatch], torch.Tensor] | None:
        """torch.compile(model) for the sizes up to compile_max_bs (None when off): one
        compiled module, recompiled once per batch size, so dynamo's recompile limit is raised
        to the number of sizes."""
        sizes = [bs for bs in self.batch_sizes if bs <= self.compile_max_bs]
        if not sizes:
            return None
        import torch._dynamo

        config = torch._dynamo.config
        for name in (
            "recompile_limit",
            "cache_size_limit",
            "accumulated_recompile_limit",
            "accumulated_cache_size_limit",
        ):
            if hasattr(config, name):
                setattr(config, name, max(getattr(config, name), 2 * len(sizes) + 8))
        return torch.compile(self.runner.model, dynamic=False)

    # --- capture -----------------------------------------------------------------------------
    @torch.inference_mode()
    def capture(self) -> bool:
        """Capture every batch size, largest first (smaller graphs reuse the pool's memory).
        Returns False, with graphs off, when a capture fails."""
        dev, n = self.runner.device, self.max_bs
        i64 = dict(dtype=torch.int64, device=dev)
        self.input_ids = torch.zeros(n, **i64)
        self.positions = torch.zeros(n, **i64)
        self.out_cache_loc = torch.zeros(n, **i64)
        self.kv_indptr = torch.arange(n + 1, dtype=torch.int32, device=dev)
        self.kv_indices = torch.zeros(self.kv_capacity, **i64)
        self.qo_indptr = torch.arange(n + 1, dtype=torch.int32, device=dev)
        self.rows = torch.arange(n, **i64)
        self.ramp = torch.arange(1, n + 1, dtype=torch.int32, device=dev)
        free_before = self.runtime.memory_info()[0]
        start = time.perf_counter()
        compiled = self._compiled_model()
        for bs in reversed(self.batch_sizes):
            batch = self._static_batch(bs)
            fn = self.runner.model
            if compiled is not None and bs <= self.compile_max_bs:
                try:
                    compiled(batch)  # compiles for this size, outside the capture
                    fn = compiled
                    self.compiled_sizes.append(bs)
                except Exception as e:  # noqa: BLE001 - the graphs keep the plain model
                    logger.warning(
                        "torch.compile failed at batch size %d (%r): the decode graphs capture "
                        "the uncompiled model",
                        bs,
                        e,
                    )
                    compiled = None
                    self.runtime.synchronize()
            try:
                self.graphs[bs] = self.runtime.capture_graph(lambda batch=batch, fn=fn: fn(batch))
            except Exception as e:  # noqa: BLE001 - any capture failure means eager decode
                logger.warning("decode graph capture failed at batch size %d: %r", bs, e)
                self.graphs.clear()
                self.compiled_sizes.clear()
                self.runtime.synchronize()
                return False
        self.runtime.synchronize()
        used = free_before - self.runtime.memory_info()[0]
        logger.info(
            "captured decode graphs for %d batch sizes %s in %.2f s (%.2f GiB)%s%s",
            len(self.graphs),
            self.batch_sizes,
            time.perf_counter() - start,
            used / GIB,
            f"; torch.compile for sizes {sorted(self.compiled_sizes)}"
            if self.compiled_sizes
            else "",
            "" if self.runtime.supports_graph_capture else " (eager replays: no graph support)",
        )
        return True

    def _static_batch(self, bs: int) -> ForwardBatch:
        """The batch a graph of size bs reads: all-padding until replay fills it."""
        return ForwardBatch(
            mode=ForwardMode.DECODE,
            batch_size=bs,
            input_ids=self.input_ids[:bs],
            positions=self.positions[:bs],
            out_cache_loc=self.out_cache_loc[:bs],
            qo_indptr=self.qo_indptr[: bs + 1],
            kv_indptr=self.kv_indptr[: bs + 1],
            kv_indices=self.kv_indices,
            logits_indices=self.rows[:bs],
            kv_cache=self.runner.kv_cache,
        )

    # --- replay ------------------------------------------------------------------------------
    def can_run(self, batch: ForwardBatch) -> bool:
        bs = batch.batch_size
        return (
            bool(self.graphs)
            and batch.mode == ForwardMode.DECODE
            and 0 < bs <= self.max_bs
            and batch.logits_indices.numel() == bs
            and batch.kv_indices.numel() + self.max_bs <= self.kv_capacity
        )

    def replay(self, batch: ForwardBatch) -> torch.Tensor:
        """Logits [B, vocab] of a decode batch (a view of the graph's output: valid until the
        next replay)."""
        bs = batch.batch_size
        padded = self.batch_sizes[bisect.bisect_left(self.batch_sizes, bs)]
        total = batch.kv_indices.numel()
        self.input_ids[:bs].copy_(batch.input_ids, non_blocking=True)
        self.positions[:bs].copy_(batch.positions, non_blocking=True)
        self.out_cache_loc[:bs].copy_(batch.out_cache_loc, non_blocking=True)
        self.kv_indptr[: bs + 1].copy_(batch.kv_indptr, non_blocking=True)
        self.kv_indices[:total].copy_(batch.kv_indices, non_blocking=True)
        if padded > bs:
            pad = padded - bs
            self.input_ids[bs:padded].zero_()
            self.positions[bs:padded].zero_()
            self.out_cache_loc[bs:padded].zero_()
            torch.add(self.ramp[:pad], total, out=self.kv_indptr[bs + 1 : padded + 1])
            self.kv_indices[total : total + pad].zero_()
        self.replays += 1
        return self.graphs[padded]()[:bs]
