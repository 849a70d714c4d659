"""The scheduler: a thin loop over its parts (docs/architecture.md, "Engine process design").

Each `step()` runs one forward pass, SGLang's order: a prefill if `Admission` admits any
waiting request (prefill has priority; the chunked request continues first), else a decode
step over the running requests, overlapped (`OverlappedDecode`) where the runtime is
asynchronous and no request needs the serial path, else serial (`Decode`, which retracts
when the pool is short). Outputs come from `OutputProcessor`. Nothing is dropped: a
retracted request is re-queued and re-prefilled, mostly from the prefix cache.
"""

from __future__ import annotations

from typing import Any

from sglang.cache.no_cache import NoPrefixCache
from sglang.cache.radix_cache import RadixCache
from sglang.model_executor.model_runner import ModelRunner
from sglang.sampling.sampler import Sampler
from sglang.scheduler.admission import Admission
from sglang.scheduler.batch_builder import BatchBuilder
from sglang.scheduler.decode import Decode
from sglang.scheduler.grammar_manager import GrammarManager
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.output import OutputProcessor, step_output
from sglang.scheduler.overlap import OverlappedDecode
from sglang.scheduler.prefill import Prefill
from sglang.scheduler.records import NewTokenRatio, Queues, SchedulerStats, StepOutput
from sglang.scheduler.req import FinishReason, Req
from sglang.scheduler.stop import StopChecker
from sglang.server_args import ServerArgs


class Scheduler:
    def __init__(
        self, args: ServerArgs, runner: ModelRunner, tokenizer: Any, eos_ids: frozenset[int]
    ):
        self.args, self.runner, self.eos_ids = args, runner, eos_ids
        cache_cls = NoPrefixCache if args.disable_radix_cache else RadixCache
        self.kv = KVManager(runner.req_to_token, runner.allocator, cache_cls(runner.allocator))
        vocab = runner.model_config.vocab_size
        self.sampler = Sampler(runner.ops, vocab)
        self.stop = StopChecker(tokenizer, runner.context_len)
        self.grammars = (
            None
            if tokenizer is None
            else GrammarManager(args.grammar_backend, tokenizer, vocab, eos_ids)
        )
        self.queues, self.stats, ratio = Queues(), SchedulerStats(), NewTokenRatio()
        q, kv = self.queues, self.kv
        self.admission = Admission(args, runner, kv, q, ratio, self.stats)
        builder = BatchBuilder(runner, kv)
        self.out = OutputProcessor(
            self.sampler, self.stop, self.grammars, kv, q, self.stats, args.stream_interval
        )
        self.prefill = Prefill(runner, kv, builder, self.out, q, ratio, self.stats)
        self.decode = Decode(runner, kv, builder, self.out, q, ratio, self.stats)
        self.overlapped = OverlappedDecode(runner, kv, builder, self.sampler, self.out, q, ratio)
        self.overlap = runner.runtime.is_async and not args.disable_overlap_schedule
        self._early_outputs: list[StepOutput] = []  # drained outside step(): sent by the next

    # --- requests in and out ---------------------------------------------------------------
    def add_request(self, req: Req) -> StepOutput | None:
        """Queue a request; returns an immediate abort output when it can never run."""
        problem = self.admission.never_runs(req)
        if problem is None and GrammarManager.wants(req) and self.grammars is None:
            problem = "json_schema, regex and ebnf need a tokenizer"
        if problem:
            req.finished = FinishReason("abort", message=problem)
            return step_output(req, [])
        if GrammarManager.wants(req):
            self.grammars.submit(req)  # waits in the grammar queue; `step` polls it
        else:
            self.queues.waiting.append(req)
        return None

    def abort(self, rid: str) -> StepOutput | None:
        if self.overlapped.holds(rid):  # its KV is released with every fed token known
            self._early_outputs += self.overlapped.drain()
        compiling = self.grammars.remove(rid) if self.grammars is not None else None
        if compiling is not None:
            compiling.finished = FinishReason("abort", message="aborted")
            return step_output(compiling, [])
        q = self.queues
        for req in [*q.waiting, *q.occupying()]:
            if req.rid == rid:
                q.remove(req)
                self.kv.release(req)
                req.finished = FinishReason("abort", message="aborted")
                return step_output(req, [])
        return None

    def has_work(self) -> bool:
        """Anything pending, requests whose grammar is compiling included."""
        return self.has_runnable() or bool(self.grammars and self.grammars.queue)

    def has_runnable(self) -> bool:
        """Something a step can run now (or a grammar queue entry to resolve)."""
        g = self.grammars
        ready = g is not None and any(r.grammar_future.done() for r in g.queue)
        q = self.queues
        pending = self.overlapped.inflight is not None or self._early_outputs
        return bool(q.waiting or q.running or q.chunked or ready or pending)

    # --- one step --------------------------------------------------------------------------
    def step(self) -> list[StepOutput]:
        outputs, self._early_outputs = self._early_outputs, []
        outputs += self._poll_grammars()
        q = self.queues
        if not (q.waiting or q.running or q.chunked):
            return outputs + self.overlapped.drain()
        self.stats.steps += 1
        plan = self.admission.plan()
        if plan is not None:
            self.stats.prefill_steps += 1
            outputs += self.overlapped.drain()
            return outputs + self.prefill.run(plan, self.admission.mixed_decode_reqs())
        if q.running and self.overlap and self.overlapped.can_run():
            self.stats.decode_steps += 1
            after = self.overlapped.inflight is not None
            outputs += self.overlapped.step()  # launches nothing if every last token is out
            self.stats.overlapped_decode_steps += after and self.overlapped.inflight is not None
            return outputs
        outputs += self.overlapped.drain()
        if q.running:
            self.stats.decode_steps += 1
            return outputs + self.decode.run()
        return outputs

    def _poll_grammars(self) -> list[StepOutput]:
        """Requests whose grammar finished compiling join the waiting queue (failures end)."""
        if self.grammars is None:
            return []
        outputs = []
        for req in self.grammars.poll():
            if req.finished is not None:
                outputs.append(step_output(req, []))
            else:
                self.queues.waiting.append(req)
        return outputs

    def check_idle(self) -> None:
        assert not self.has_work()
        self.kv.check_idle()

    # Views for the scheduler process, the benchmarks and the tests.
    waiting = property(lambda self: self.queues.waiting)
    running = property(lambda self: self.queues.running)
    chunked = property(lambda self: self.queues.chunked)
    cache = property(lambda self: self.kv.cache, lambda self, c: setattr(self.kv, "cache", c))
    mixed = property(lambda s: s.admission.mixed, lambda s, v: setattr(s.admission, "mixed", v))
    chunk_size = property(lambda self: self.admission.chunk_size)
