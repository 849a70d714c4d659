"""One prefill forward: the planned requests' new tokens (and, when mixing, one decode row per
running request), then each request's computed tokens go into the prefix cache, prompt
logprobs are recorded, and the requests whose prompt is complete are sampled and start
running."""

from __future__ import annotations

import torch

from sglang.benchmark.request_trace import mark
from sglang.model_executor.model_runner import ModelRunner
from sglang.scheduler.batch_builder import BatchBuilder
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.output import OutputProcessor, step_output
from sglang.scheduler.records import (
    NewTokenRatio,
    PrefillPlan,
    Queues,
    SchedulerStats,
    StepOutput,
)
from sglang.scheduler.req import FinishReason, Req


class Prefill:
    def __init__(
        self,
        runner: ModelRunner,
        kv: KVManager,
        builder: BatchBuilder,
        out: OutputProcessor,
        queues: Queues,
        ratio: NewTokenRatio,
        stats: SchedulerStats,
    ) -> None:
        self.runner, self.kv, self.builder, self.out = runner, kv, builder, out
        self.queues, self.ratio, self.stats = queues, ratio, stats

    def run(self, plan: PrefillPlan, decode_reqs: list[Req]) -> list[StepOutput]:
        slots = None
        if decode_reqs:
            slots = self.kv.grow_decode(decode_reqs)
            assert slots is not None, "Admission.mixed_decode_reqs checked the room"
            self.stats.mixed_steps += 1
        batch, logit_rows = self.builder.extend(plan, decode_reqs, slots)
        mark("prefill_forward")
        logits = self.runner.forward(batch)
        mark("prefill_launched")
        for req, n in zip(plan.reqs, plan.lens):
            req.kv_len += n
            self.kv.cache_unfinished(req)  # later requests share it while this one runs
        for req in decode_reqs:
            req.kv_len += 1
        outputs: list[StepOutput] = []
        sample_reqs, sample_rows = [], []
        cursor = 0
        queues = self.queues
        for req, n, rows in zip(plan.reqs, plan.lens, logit_rows):
            mine = logits[cursor : cursor + len(rows)]
            cursor += len(rows)
            complete = req.kv_len == len(req.fill_ids)
            if req.wants_prompt_logprobs and not req.prompt_logprobs_done:
                record_prompt_logprobs(req, mine, req.kv_len - n, complete)
            if complete and req.params.max_new_tokens == 0:  # prefill only: scoring, caching
                req.finished = FinishReason("length", 0)
                self.kv.release(req)
                outputs.append(step_output(req, []))
                if req is queues.chunked:
                    queues.chunked = None
                continue
            if complete:
                sample_reqs.append(req)
                sample_rows.append(cursor - 1)  # its last row
                if req is queues.chunked:
                    queues.chunked = None
        if decode_reqs:
            sample_rows.extend(range(cursor, cursor + len(decode_reqs)))
        if sample_reqs or decode_reqs:
            outputs += self.out.sample_and_advance(
                [*sample_reqs, *decode_reqs], rows_of(logits, sample_rows)
            )
            mark("prefill_sampled")
            for req in sample_reqs:
                if req.finished is None:
                    queues.running.append(req)
        if decode_reqs:
            self.ratio.decay()
        return outputs


def rows_of(logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """logits[rows]: a view where the rows are consecutive (no copy: one request, or none with
    prompt logprobs), else stacked."""
    if rows == list(range(rows[0], rows[0] + len(rows))):
        return logits[rows[0] : rows[0] + len(rows)]
    return torch.stack([logits[r] for r in rows])


def record_prompt_logprobs(req: Req, logits: torch.Tensor, start: int, complete: bool) -> None:
    """Logits rows cover positions max(start, lps-1) .. end-1 of this chunk; position p scores
    prompt token p+1."""
    lps = req.logprob_start_len
    first = max(start, lps - 1)
    end = req.kv_len
    n_pred = min(end, len(req.prompt_ids) - 1) - first
    if not req.prompt_logprobs:
        req.prompt_logprobs = [None] if lps == 0 else []
        req.prompt_top_logprobs = [None] if lps == 0 else []
    if n_pred > 0:
        logprobs = torch.log_softmax(logits[:n_pred].float(), dim=-1)
        targets = torch.tensor(
            req.prompt_ids[first + 1 : first + 1 + n_pred], device=logprobs.device
        )
        chosen = logprobs.gather(1, targets[:, None])[:, 0].tolist()
        req.prompt_logprobs.extend(chosen)
        if req.top_logprobs_num > 0:
            vals, idx = logprobs.topk(req.top_logprobs_num, dim=-1)
            req.prompt_top_logprobs.extend(
                list(zip(i, v)) for i, v in zip(idx.tolist(), vals.tolist())
            )
        else:
            req.prompt_top_logprobs.extend([None] * n_pred)
    if complete:
        req.prompt_logprobs_done = True
