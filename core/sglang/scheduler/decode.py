"""One serial decode step over the running requests. Every running request needs one KV slot;
when the pool is short, the request with the fewest output tokens (the longest prompt on
ties) is retracted to the front of the waiting queue, its KV handed to the prefix cache so its
re-prefill is mostly a cache hit. A request alone that still does not fit ends with "length"."""

from __future__ import annotations

import logging

from sglang.model_executor.model_runner import ModelRunner
from sglang.scheduler.batch_builder import BatchBuilder
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.output import OutputProcessor, step_output
from sglang.scheduler.records import NewTokenRatio, Queues, SchedulerStats, StepOutput
from sglang.scheduler.req import FinishReason

logger = logging.getLogger(__name__)


class Decode:
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

    def run(self) -> list[StepOutput]:
        finished_early = self.make_room()
        running = self.queues.running
        if not running:
            return finished_early
        reqs = list(running)
        slots = self.kv.grow_decode(reqs)
        assert slots is not None, "decode room was ensured"
        batch = self.builder.decode(reqs, slots, [req.fill_ids[req.kv_len] for req in reqs])
        logits = self.runner.forward(batch)
        for req in reqs:
            req.kv_len += 1
        outputs = finished_early + self.out.sample_and_advance(reqs, logits)
        self.ratio.decay()
        return outputs

    def make_room(self) -> list[StepOutput]:
        """Retract until every running request has a slot; returns the outputs of requests
        that ended instead (a lone request whose context fills the pool)."""
        running, kv = self.queues.running, self.kv
        while running and kv.available() < len(running):
            if len(running) == 1:
                req = running.pop()
                req.finished = FinishReason("length", len(req.output_ids), "the KV pool is full")
                kv.release(req)
                return [step_output(req, req.output_ids[req.sent_len :])]
            victim = min(running, key=lambda r: (len(r.output_ids), -len(r.prompt_ids)))
            running.remove(victim)
            kv.release(victim)
            victim.retractions += 1
            self.stats.retractions += 1
            self.queues.waiting.appendleft(victim)
            self.ratio.raise_after_retraction()
            logger.info(
                "retracted request %s (%d output tokens); KV available %d for %d running",
                victim.rid,
                len(victim.output_ids),
                kv.available(),
                len(running),
            )
        return []
