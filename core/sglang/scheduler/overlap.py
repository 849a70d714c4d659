"""Overlapped decode (SGLang's overlap scheduler, on runtimes whose kernels run asynchronously):
step t+1 is launched with step t's sampled ids, still on the device, as its input ids; step
t's ids come back through a non-blocking copy and an event, and its outputs are processed
while t+1 computes.

Invariants: a request's `kv_len` counts the token in flight; a request whose token in flight
ends it by length is not fed to t+1; one that finished otherwise (a stop token) at step t was
fed once more in t+1 and that token is dropped (its slot is released with the rest: the
device runs in stream order, so nothing reuses it early). Anything whose sampling depends on
the newest token (grammars, penalties, min_new_tokens not yet reached), logprobs, and a pool
too short for every running request take the serial path, after `drain`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from sglang.model_executor.model_runner import ModelRunner
from sglang.sampling.sampler import SampleLaunch, SampleOutput, Sampler
from sglang.scheduler.batch_builder import BatchBuilder
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.output import OutputProcessor, sample_inputs
from sglang.scheduler.records import NewTokenRatio, Queues, StepOutput
from sglang.scheduler.req import Req


@dataclass(eq=False)
class InFlight:
    """A decode step launched on the device whose sampled ids are not yet processed."""

    reqs: list[Req]
    launch: SampleLaunch
    host_ids: torch.Tensor  # filled by a non-blocking copy; read after `event`
    event: Any
    row_of: dict[int, int]  # id(req) -> its row in this step


class OverlappedDecode:
    def __init__(
        self,
        runner: ModelRunner,
        kv: KVManager,
        builder: BatchBuilder,
        sampler: Sampler,
        out: OutputProcessor,
        queues: Queues,
        ratio: NewTokenRatio,
    ) -> None:
        self.runner, self.kv, self.builder, self.sampler, self.out = (
            runner,
            kv,
            builder,
            sampler,
            out,
        )
        self.queues, self.ratio = queues, ratio
        self.inflight: InFlight | None = None

    def holds(self, rid: str) -> bool:
        return self.inflight is not None and any(r.rid == rid for r in self.inflight.reqs)

    def can_run(self) -> bool:
        """Whether the next decode step may launch before the previous one is processed."""
        running = self.queues.running
        if self.kv.available() < len(running):
            return False
        for r in running:
            p = r.params
            if (
                r.grammar is not None
                or r.return_logprob
                or p.repetition_penalty != 1.0
                or p.frequency_penalty
                or p.presence_penalty
                or len(r.output_ids) < p.min_new_tokens
            ):
                return False
        return True

    def step(self) -> list[StepOutput]:
        """Launch a decode step over the running requests, then process the one before it."""
        reqs = list(self.queues.running)
        prev = self.inflight
        if prev is not None:  # a request whose last token is in flight is not fed again
            reqs = [r for r in reqs if not self._last_in_flight(r)]
            if not reqs:  # nothing to launch: its outputs go out now, not after a step
                return self.drain()
        slots = self.kv.grow_decode(reqs)
        assert slots is not None, "can_run checked the room"
        if prev is None:  # every input token is known on the host
            ids: Any = [r.fill_ids[r.kv_len] for r in reqs]
        else:  # every running request was in the previous step: its sampled ids, on device
            rows = [prev.row_of[id(r)] for r in reqs]
            ids = prev.launch.ids
            if len(rows) != len(prev.reqs):
                index = torch.tensor(rows, dtype=torch.int64).to(ids.device, non_blocking=True)
                ids = ids.index_select(0, index)
        batch = self.builder.decode(reqs, slots, ids)
        for r in reqs:
            r.kv_len += 1
        logits = self.runner.forward(batch)
        launch = self.sampler.launch(logits, sample_inputs(reqs, [None] * len(reqs)))
        host_ids = launch.ids.to("cpu", non_blocking=True)
        event = self.runner.runtime.new_event()
        event.record()
        row_of = {id(r): i for i, r in enumerate(reqs)}
        self.inflight = InFlight(reqs, launch, host_ids, event, row_of)
        self.ratio.decay()
        return self._process(prev) if prev is not None else []

    def _last_in_flight(self, req: Req) -> bool:
        """Whether the token in flight for `req` ends it by length (max_new_tokens or the
        context length): fed to the next step, it would only compute a token to drop, and a
        request arriving meanwhile would wait for that step before its prefill."""
        n = len(req.output_ids) + 1
        limit = req.params.max_new_tokens
        return (limit is not None and n >= limit) or (
            len(req.prompt_ids) + n >= self.runner.context_len
        )

    def drain(self) -> list[StepOutput]:
        """Read back and process the step in flight, if any (before any serial step)."""
        prev, self.inflight = self.inflight, None
        return self._process(prev) if prev is not None else []

    def _process(self, step: InFlight) -> list[StepOutput]:
        step.event.synchronize()
        ids = step.host_ids.tolist()
        # Requests that finished (or were aborted) since this step was launched: drop their
        # extra token.
        live = [i for i, r in enumerate(step.reqs) if r.finished is None]
        result = self.sampler.finish(step.launch, ids)
        if len(live) == len(step.reqs):
            return self.out.advance(step.reqs, result)
        reqs = [step.reqs[i] for i in live]
        sub = SampleOutput(
            [result.ids[i] for i in live],
            [result.logprobs[i] for i in live],
            [result.top_logprobs[i] for i in live],
        )
        return self.out.advance(reqs, sub)
