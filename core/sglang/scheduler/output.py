"""Output processing: sample the step's logits, append each request's token, check whether it
finished (stop checks, then its grammar), release a finished request's KV and emit
`StepOutput`s every `stream_interval` tokens and at the end."""

from __future__ import annotations

from typing import Any

import torch

from sglang.sampling.sampler import SampleInput, SampleOutput, Sampler
from sglang.scheduler.grammar_manager import GrammarManager
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.records import Queues, SchedulerStats, StepOutput
from sglang.scheduler.req import FinishReason, Req
from sglang.scheduler.stop import StopChecker


def sample_inputs(reqs: list[Req], masks: list[Any]) -> list[SampleInput]:
    return [
        SampleInput(
            params=r.params,
            prompt_ids=r.prompt_ids,
            output_ids=r.output_ids,
            generator=None if r.params.is_greedy else r.sampling_generator(),
            eos_ids=r.eos_ids,
            top_logprobs_num=r.top_logprobs_num,
            return_logprob=r.return_logprob,
            bitmask=mask,
        )
        for r, mask in zip(reqs, masks)
    ]


def step_output(req: Req, new_ids: list[int]) -> StepOutput:
    """The request's output since the last one sent (prompt logprobs only in its first)."""
    start = req.sent_len
    req.sent_len = len(req.output_ids)
    first = start == 0
    return StepOutput(
        rid=req.rid,
        new_token_ids=list(new_ids),
        finished=req.finished,
        output_logprobs=req.output_logprobs[start:] if req.return_logprob else [],
        output_top_logprobs=req.output_top_logprobs[start:] if req.return_logprob else [],
        prompt_logprobs=req.prompt_logprobs if (first and req.return_logprob) else None,
        prompt_top_logprobs=req.prompt_top_logprobs if (first and req.return_logprob) else None,
        prompt_tokens=len(req.prompt_ids),
        completion_tokens=len(req.output_ids),
        cached_tokens=req.cached_tokens,
        retractions=req.retractions,
    )


class OutputProcessor:
    def __init__(
        self,
        sampler: Sampler,
        stop: StopChecker,
        grammars: GrammarManager | None,
        kv: KVManager,
        queues: Queues,
        stats: SchedulerStats,
        stream_interval: int,
    ) -> None:
        self.sampler, self.stop, self.grammars, self.kv = sampler, stop, grammars, kv
        self.queues, self.stats, self.stream_interval = queues, stats, stream_interval

    def sample_and_advance(self, reqs: list[Req], logits: torch.Tensor) -> list[StepOutput]:
        masks = self.grammars.bitmasks(reqs) if self.grammars is not None else [None] * len(reqs)
        result = self.sampler(logits, sample_inputs(reqs, masks))
        return self.advance(reqs, result)

    def advance(self, reqs: list[Req], result: SampleOutput) -> list[StepOutput]:
        """Append each request's new token, check whether it finished, collect outputs."""
        outputs = []
        for i, req in enumerate(reqs):
            interval = req.params.stream_interval or self.stream_interval
            token = result.ids[i]
            req.output_ids.append(token)
            if req.return_logprob:
                req.output_logprobs.append(result.logprobs[i])
                req.output_top_logprobs.append(result.top_logprobs[i])
            req.finished = self._check_finished(req, token)
            if req.finished is not None:
                if req in self.queues.running:
                    self.queues.running.remove(req)
                self.kv.release(req)
                outputs.append(step_output(req, req.output_ids[req.sent_len :]))
            elif len(req.output_ids) - req.sent_len >= interval:
                outputs.append(step_output(req, req.output_ids[req.sent_len :]))
        self.stats.generated_tokens += len(reqs)
        return outputs

    def _check_finished(self, req: Req, token: int) -> FinishReason | None:
        """The stop checks, then the grammar: a refused token aborts, and a terminated grammar
        (it accepted a stop token) ends the request even with ignore_eos."""
        if req.grammar is not None:
            refused = self.grammars.advance(req, token)
            if refused is not None:
                return refused
        finished = self.stop.check(req)
        if finished is None and req.grammar is not None and req.grammar.is_terminated():
            finished = FinishReason("stop", token)
        return finished
