"""The frontend half of the engine: tokenize, send to the scheduler, receive token ids, detokenize
incrementally, and hand results out in SGLang's `{text, output_ids, meta_info}` shape.

It lives in one asyncio loop (the Engine's background loop, or the HTTP server's) and talks to
the scheduler process over ZeroMQ: PUSH requests to the scheduler, PULL outputs from it. With
data parallelism there is one PUSH socket per replica and the replica of each request comes
from the LoadBalancer (replicas.py); every replica PUSHes to the one PULL socket.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from sglang.benchmark.request_trace import mark
from sglang.constrained import constraint_of, validate_constraint
from sglang.engine.detokenizer import IncrementalDetokenizer
from sglang.engine.io import (
    AbortRequest,
    ControlReply,
    ControlRequest,
    SchedulerInfo,
    TokenizedRequest,
)
from sglang.engine.records import GenerateResult
from sglang.engine.replicas import LoadBalancer, merge_replies
from sglang.engine.request_checks import check_request
from sglang.sampling.params import SamplingParams
from sglang.scheduler.records import StepOutput

logger = logging.getLogger(__name__)


@dataclass
class ReqState:
    prompt_ids: list[int]
    params: SamplingParams
    detok: IncrementalDetokenizer | None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    output_ids: list[int] = field(default_factory=list)
    # SGLang's logprob tuples (logprob, token_id, text or None), grown chunk by chunk
    output_token_logprobs: list[tuple] = field(default_factory=list)
    output_top_logprobs: list[list[tuple]] = field(default_factory=list)
    input_token_logprobs: list[tuple] | None = None
    input_top_logprobs: list[list[tuple] | None] | None = None
    return_text_in_logprobs: bool = False
    created: float = field(default_factory=time.monotonic)
    first_token_time: float | None = None


class SchedulerGone(RuntimeError):
    """The scheduler process has exited: no request can be served any more."""


class TokenizerManager:
    def __init__(
        self,
        tokenizer: Any,
        scheduler_in: str | list[str],
        scheduler_out: str,
        info: SchedulerInfo,
        load_balance_method: str = "round_robin",
    ):
        self.tokenizer = tokenizer
        self.info = info
        self.ctx = zmq.asyncio.Context()
        addresses = [scheduler_in] if isinstance(scheduler_in, str) else list(scheduler_in)
        self.pushes = []  # one per data-parallel replica
        for address in addresses:
            self.pushes.append(self.ctx.socket(zmq.PUSH))
            self.pushes[-1].connect(address)
        self.balancer = LoadBalancer(len(addresses), load_balance_method)
        self.pull = self.ctx.socket(zmq.PULL)
        self.pull.bind(scheduler_out)
        self.states: dict[str, ReqState] = {}
        self.controls: dict[int, asyncio.Future] = {}
        self._control_ids = itertools.count()
        self._reader: tuple[asyncio.AbstractEventLoop, zmq.Socket] | None = None
        self._watch_task: asyncio.Task | None = None
        self.failure: SchedulerGone | None = None

    # --- plumbing --------------------------------------------------------------------------
    def start(self) -> None:
        """Receive the scheduler's messages from now on, in this loop: a reader on the
        socket's descriptor takes every message there is each time it fires (zmq.asyncio's
        recv costs a future, a task wake-up and its own callbacks per message)."""
        if self._reader is None:
            loop = asyncio.get_running_loop()
            self._reader = (loop, zmq.Socket.shadow(self.pull.underlying))
            loop.add_reader(self.pull.FD, self._receive)
            loop.call_soon(self._receive)  # what arrived before the reader was added

    def watch(self, process: Any, poll_s: float = 1.0, on_exit: Any = None) -> None:
        """Once `process` (the scheduler, or every rank of it) exits, fail every pending and
        later request and control with SchedulerGone, rather than leave them waiting for
        outputs forever; then call `on_exit(message)` if given."""

        async def watch() -> None:
            while process.is_alive():
                await asyncio.sleep(poll_s)
            summary = getattr(process, "exit_summary", None)
            message = (
                summary() if summary else f"the scheduler process exited (code {process.exitcode})"
            )
            self.fail(SchedulerGone(message))
            if on_exit is not None:
                on_exit(message)

        self._watch_task = asyncio.get_running_loop().create_task(watch())

    def fail(self, error: SchedulerGone) -> None:
        self.failure = error
        for state in self.states.values():
            state.queue.put_nowait(error)
        for fut in self.controls.values():
            if not fut.done():
                fut.set_exception(error)
        self.controls.clear()

    def _receive(self) -> None:
        """Every message waiting (ZeroMQ's descriptor signals an edge: it fires again only
        once they are all taken)."""
        pull = self._reader[1]
        while True:
            try:
                msg = pickle.loads(pull.recv(zmq.NOBLOCK))
            except zmq.Again:
                return
            except zmq.ZMQError:  # closed under us (shutdown)
                return
            mark("tm_recv")
            if isinstance(msg, ControlReply):
                fut = self.controls.pop(msg.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                continue
            for out in msg:
                state = self.states.get(out.rid)
                if state is not None:
                    state.queue.put_nowait(out)

    async def control(self, kind: str, timeout: float = 60) -> ControlReply:
        """`kind` sent to every replica; their replies merged into one."""
        self.start()
        if self.failure is not None:
            raise self.failure
        futs = []
        for push in self.pushes:
            cid = next(self._control_ids)
            futs.append(asyncio.get_running_loop().create_future())
            self.controls[cid] = futs[-1]
            await push.send(pickle.dumps(ControlRequest(kind, cid)))
        replies = await asyncio.wait_for(asyncio.gather(*futs), timeout)
        return merge_replies(kind, list(replies), self.balancer)

    async def abort(self, rid: str) -> None:
        """Ask the scheduler to abort `rid`; its stream then ends with finish reason abort."""
        replica = self.balancer.replica_of.get(rid)
        for i, push in enumerate(self.pushes):
            if replica is None or replica == i:
                await push.send(pickle.dumps(AbortRequest(rid)))

    async def send_shutdown(self) -> None:
        # Bounded: with the scheduler gone, a send could wait for a peer that never returns.
        for push in self.pushes:
            try:
                await asyncio.wait_for(
                    push.send(pickle.dumps(ControlRequest("shutdown", -1))), timeout=5
                )
            except asyncio.TimeoutError:
                logger.warning("the scheduler did not take the shutdown message")

    async def aclose(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
        self._stop_reader()
        self.close()

    def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reader[0].remove_reader(self.pull.FD)
            self._reader = None

    def close(self) -> None:
        for push in self.pushes:
            push.close(0)
        self.pull.close(0)
        self.ctx.term()

    # --- tokenization ----------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            raise ValueError("the server runs with --skip-tokenizer-init: send input_ids")
        return list(self.tokenizer.encode(text))

    def check_constraint(self, params: SamplingParams) -> None:
        """Raise ValueError (a GrammarError naming the problem) for an invalid json_schema,
        regex or ebnf: checked here, without the tokenizer, so a bad request fails at once
        rather than after queueing for compilation in the scheduler."""
        if constraint_of(params) is None:
            return
        if self.tokenizer is None:
            raise ValueError("json_schema, regex and ebnf need a tokenizer")
        validate_constraint(self.info.settings.grammar_backend, params)

    # --- one request -----------------------------------------------------------------------
    async def generate_one(
        self, prompt_ids: list[int], params: SamplingParams, **kw: Any
    ) -> AsyncIterator[GenerateResult]:
        """Yields a GenerateResult per output chunk; the last has a finish reason. Cancelling
        the iteration aborts the request in the scheduler. `params` come validated once by the
        caller: `SamplingParams.from_dict` with the vocabulary size, then `check_constraint`.
        `kw`: those of `submit`. Logprobs come as SGLang's (logprob, token_id, text) tuples,
        text None unless return_text_in_logprobs."""
        results = self.submit(prompt_ids, params, **kw)
        try:
            async for chunk in results:
                yield chunk
        finally:
            await results.aclose()

    def submit(
        self,
        prompt_ids: list[int],
        params: SamplingParams,
        rid: str | None = None,
        return_logprob: bool = False,
        logprob_start_len: int | None = None,
        top_logprobs_num: int = 0,
        return_text_in_logprobs: bool = False,
        priority: int | None = None,
    ) -> AsyncIterator[GenerateResult]:
        """`generate_one` in two halves: the checks (ValueError) and the request sent to the
        scheduler now, synchronously (a streaming route sends it before it makes its response;
        were the socket's queue full, it goes when the results are first read), then the
        results. Start reading them at once: only results that were read can abort the request
        and release it (closing them, or dropping them unfinished, aborts it)."""
        self.start()
        if self.failure is not None:
            raise self.failure
        rid = rid or uuid.uuid4().hex
        if rid in self.states:
            raise ValueError(f"request id {rid!r} is already in use")
        check_request(
            self.info,
            self.tokenizer is not None,
            prompt_ids,
            params,
            return_text_in_logprobs,
            top_logprobs_num,
            priority,
        )
        detok = None
        if self.tokenizer is not None:
            detok = IncrementalDetokenizer(
                self.tokenizer,
                prompt_ids,
                params.skip_special_tokens,
                params.spaces_between_special_tokens,
                params.stop,
                params.no_stop_trim,
            )
        state = ReqState(prompt_ids, params, detok, return_text_in_logprobs=return_text_in_logprobs)
        self.states[rid] = state
        lps = -1
        if return_logprob:
            lps = len(prompt_ids) - 1 if logprob_start_len is None else logprob_start_len
            lps = max(0, min(lps, len(prompt_ids) - 1)) if lps >= 0 else -1
        req = TokenizedRequest(
            rid, prompt_ids, params, return_logprob, lps, top_logprobs_num, priority
        )
        push = self.pushes[self.balancer.assign(rid)]
        mark("tm_send")
        # zmq.asyncio sends at once where it can (a done future), else queues the message
        sending = asyncio.ensure_future(push.send(pickle.dumps(req)))
        # The send woke ZeroMQ's I/O thread, which carries the message to the scheduler: where
        # cores are short it waited for this thread's response work (+0.3 ms on the 2-core
        # VM's hop); a yield lets it go first. With a core to spare, a syscall that returns.
        _yield_cpu()
        return self._results(rid, state, push, sending, return_logprob)

    async def _results(
        self, rid: str, state: ReqState, push: Any, sending: Any, return_logprob: bool
    ) -> AsyncIterator[GenerateResult]:
        finished = False
        try:
            await sending
            while not finished:
                out: StepOutput | SchedulerGone = await state.queue.get()
                if isinstance(out, SchedulerGone):
                    raise out
                finished = out.finished is not None
                chunk = self._chunk(rid, state, out, return_logprob)
                mark("tm_chunk")
                yield chunk
        finally:
            self.states.pop(rid, None)
            self.balancer.release(rid)
            if not sending.done():
                sending.cancel()  # never sent: nothing for the scheduler to abort
            elif not finished and self.failure is None:
                await push.send(pickle.dumps(AbortRequest(rid)))

    def _chunk(
        self, rid: str, state: ReqState, out: StepOutput, return_logprob: bool
    ) -> GenerateResult:
        if state.first_token_time is None and out.new_token_ids:
            state.first_token_time = time.monotonic()
        state.output_ids.extend(out.new_token_ids)
        text = ""
        if state.detok is not None:
            new_ids = out.new_token_ids
            matched = out.finished.matched if out.finished is not None else None
            if (  # SGLang's trim: a matched stop token (EOS, stop_token_ids) is not text
                isinstance(matched, int)
                and not state.params.no_stop_trim
                and new_ids
                and new_ids[-1] == matched
            ):
                new_ids = new_ids[:-1]
            state.detok.add(new_ids)
            if out.finished is not None:
                state.detok.finish(
                    matched if isinstance(matched, str) else None, out.finished.regex
                )
            state.detok.delta(out.finished is not None)
            text = state.detok.text[: state.detok.emitted]
        result = GenerateResult(
            rid=rid,
            text=text,
            output_ids=list(state.output_ids),
            finish_reason=out.finished,
            prompt_tokens=out.prompt_tokens,
            completion_tokens=len(state.output_ids),
            cached_tokens=out.cached_tokens,
            retractions=out.retractions,
            e2e_latency=time.monotonic() - state.created,
        )
        if state.first_token_time is not None:
            result.ttft = state.first_token_time - state.created
        if return_logprob:
            self._add_logprobs(state, out, result)
        return result

    def _add_logprobs(self, state: ReqState, out: StepOutput, result: GenerateResult) -> None:
        """Extend the request's logprob tuples by this chunk's and put them in `result`."""
        tuples = self._logprob_tuples if state.return_text_in_logprobs else _no_text_tuples
        new_ids = state.output_ids[len(state.output_token_logprobs) :]
        state.output_token_logprobs.extend(tuples(zip(out.output_logprobs, new_ids)))
        state.output_top_logprobs.extend(
            tuples((lp, tid) for tid, lp in (tops or [])) for tops in out.output_top_logprobs
        )
        if out.prompt_logprobs is not None:
            start = len(state.prompt_ids) - len(out.prompt_logprobs)
            state.input_token_logprobs = tuples(zip(out.prompt_logprobs, state.prompt_ids[start:]))
            state.input_top_logprobs = [
                tuples((lp, tid) for tid, lp in tops) if tops else None
                for tops in out.prompt_top_logprobs
            ]
        result.output_token_logprobs = list(state.output_token_logprobs)
        result.output_top_logprobs = list(state.output_top_logprobs)
        if state.input_token_logprobs is not None:
            result.input_token_logprobs = state.input_token_logprobs
            result.input_top_logprobs = state.input_top_logprobs

    def _logprob_tuples(self, pairs) -> list[tuple]:
        """(logprob, token_id) pairs as (logprob, token_id, token text); the text of one token
        decoded alone, special tokens kept (SGLang's detokenize_logprob_tokens)."""
        pairs = list(pairs)
        texts = self.tokenizer.batch_decode([[tid] for _, tid in pairs]) if pairs else []
        return [(lp, tid, text) for (lp, tid), text in zip(pairs, texts)]


_yield_cpu = getattr(os, "sched_yield", lambda: None)


def _no_text_tuples(pairs) -> list[tuple]:
    return [(lp, tid, None) for lp, tid in pairs]
