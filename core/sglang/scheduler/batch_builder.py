"""ForwardBatch assembly: a prefill plan (with mixed decode rows) or a decode step, as the
tensors one forward needs. Per-step device work scales with the batch, not its requests."""

from __future__ import annotations

from itertools import accumulate
from typing import Any

import torch

from sglang.forward_batch import ForwardBatch, ForwardMode
from sglang.model_executor.model_runner import ModelRunner
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.records import PrefillPlan
from sglang.scheduler.req import Req


class BatchBuilder:
    def __init__(self, runner: ModelRunner, kv: KVManager) -> None:
        self.runner, self.kv = runner, kv

    def extend(
        self, plan: PrefillPlan, decode_reqs: list[Req], decode_slots: torch.Tensor | None
    ) -> tuple[ForwardBatch, list[list[int]]]:
        """The prefill rows of `plan`, then one row per decode request (at `decode_slots`).
        Also returns, per planned request, the batch rows whose logits it needs: the last
        prompt token once the prompt is complete, and the positions its prompt logprobs score."""
        ids, positions, locs, kv_lens = [], [], [], []
        logit_rows: list[list[int]] = []
        offset = 0
        for req, n in zip(plan.reqs, plan.lens):
            start, end = req.kv_len, req.kv_len + n
            fill = req.fill_ids
            ids.extend(fill[start:end])
            positions.extend(range(start, end))
            locs.append(self.kv.slots_of(req, end)[start:end])
            kv_lens.append(end)
            wanted = []
            if req.wants_prompt_logprobs and not req.prompt_logprobs_done:
                first = max(start, req.logprob_start_len - 1)
                wanted = list(range(offset + first - start, offset + n))
            if end == len(fill) and (not wanted or wanted[-1] != offset + n - 1):
                wanted.append(offset + n - 1)
            logit_rows.append(wanted)
            offset += n
        flat_rows = [r for rs in logit_rows for r in rs]
        reqs, lens = plan.reqs, plan.lens
        if decode_reqs:
            locs.append(decode_slots)
            ids.extend(r.fill_ids[r.kv_len] for r in decode_reqs)
            positions.extend(r.kv_len for r in decode_reqs)
            kv_lens.extend(r.kv_len + 1 for r in decode_reqs)
            flat_rows.extend(range(offset, offset + len(decode_reqs)))
            reqs, lens = [*reqs, *decode_reqs], [*lens, *[1] * len(decode_reqs)]
        batch = self.build(ForwardMode.EXTEND, reqs, ids, positions, locs, lens, kv_lens, flat_rows)
        return batch, logit_rows

    def decode(self, reqs: list[Req], slots: torch.Tensor, ids: Any) -> ForwardBatch:
        """One row per request at its current length. `ids`: host ints, or a device tensor
        (the previous step's sampled ids, under overlap)."""
        positions = [r.kv_len for r in reqs]
        kv_lens = [r.kv_len + 1 for r in reqs]
        rows = list(range(len(reqs)))
        ones = [1] * len(reqs)
        return self.build(ForwardMode.DECODE, reqs, ids, positions, [slots], ones, kv_lens, rows)

    def build(self, mode, reqs, ids, positions, locs, lens, kv_lens, logit_rows) -> ForwardBatch:
        dev = self.runner.device
        qo = torch.tensor(list(accumulate(lens, initial=0)), dtype=torch.int32)
        kv = torch.tensor(list(accumulate(kv_lens, initial=0)), dtype=torch.int32)
        kv_indices = self.gather_kv_indices(reqs, kv, sum(kv_lens))
        return ForwardBatch(
            mode=mode,
            batch_size=len(reqs),
            input_ids=ids
            if isinstance(ids, torch.Tensor)
            else torch.tensor(ids, dtype=torch.int64).to(dev, non_blocking=True),
            positions=torch.tensor(positions, dtype=torch.int64).to(dev, non_blocking=True),
            out_cache_loc=(locs[0] if len(locs) == 1 else torch.cat(locs)).to(dev),
            qo_indptr=qo.to(dev, non_blocking=True),
            kv_indptr=kv.to(dev, non_blocking=True),
            kv_indices=kv_indices.to(dev),
            logits_indices=torch.tensor(logit_rows, dtype=torch.int64).to(dev, non_blocking=True),
            kv_cache=self.runner.kv_cache,
        )

    def gather_kv_indices(self, reqs: list[Req], kv_indptr: torch.Tensor, total: int):
        """Every request's KV slots, concatenated, read from the request-to-token table with a
        fixed handful of ops whatever the batch size: entry j belongs to request b = the last
        with kv_indptr[b] <= j, at position j - kv_indptr[b]. No host sync: `total` is known."""
        table = self.kv.req_to_token.req_to_token
        if len(reqs) == 1:  # its row's first slots: a view, no device op
            return table[reqs[0].row, :total]
        dev = table.device
        rows = torch.tensor([r.row for r in reqs], dtype=torch.int64).to(dev, non_blocking=True)
        starts = kv_indptr.to(dev, non_blocking=True).long()
        j = torch.arange(total, dtype=torch.int64, device=dev)
        b = torch.searchsorted(starts[1:], j, right=True)
        return table[rows[b], j - starts[b]]
