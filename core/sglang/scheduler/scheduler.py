"""The scheduler: a thin loop over the waiting queue, the running batch and the KV manager.

Each `step()` runs one forward pass (SGLang's order):
1. a prefill batch if any waiting request can be admitted (prefill has priority), continuing
   the one request whose prompt is being chunked first; after the forward each request's
   computed tokens go into the prefix cache (every chunk too), so queued requests sharing its
   prefix reuse it while it still runs, and a request sharing a long uncached prefix with one
   already in the batch waits for the next batch (`IN_BATCH_PREFIX_MIN`);
2. otherwise a decode step over the running requests, retracting the ones with the fewest
   output tokens back to the queue when the KV pool cannot hold one more token for each.
With `--enable-mixed-chunk` (SGLang's mixed chunked prefill) a prefill forward also carries
the running requests' next tokens, one query row each, so a new arrival's prefill no longer
stalls every running request for one whole step: its own forward is the decode step. The
prefill budget shrinks by the number of running requests; when the pool cannot give each of
them a slot after the prefill's allocations, the prefill runs alone.
Admission reserves room for output tokens: each running request is expected to need
`new_token_ratio` x its remaining tokens; the ratio decays from 0.7 towards 0.1 while nothing
is retracted and rises again after a retraction. Nothing is ever dropped: a retracted request
keeps its output and is re-prefilled, mostly from the prefix cache.

Overlap (SGLang's overlap scheduler, for runtimes whose kernels run asynchronously, unless
`--disable-overlap-schedule`): consecutive decode steps are pipelined. Step t+1 is launched
(its input ids are step t's sampled ids, still on the device) before step t's ids are read back
and processed (stop checks, outputs, KV release), so that host work runs while the device
computes. A request that finished at step t has then been fed once more in step t+1; that
token is dropped. Prefill steps, retractions, grammars, penalties, min_new_tokens and logprobs
take the serial path: the in-flight step is drained (read back and processed) first. On a
synchronous runtime this loop is the serial one.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from sglang.cache.no_cache import NoPrefixCache
from sglang.cache.radix_cache import RadixCache
from sglang.forward_batch import ForwardBatch, ForwardMode
from sglang.model_executor.model_runner import ModelRunner
from sglang.sampling.sampler import SampleInput, SampleLaunch, SampleOutput, Sampler
from sglang.scheduler.grammar_manager import GrammarManager
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.req import FinishReason, Req
from sglang.scheduler.stop import StopChecker
from sglang.server_args import ServerArgs

logger = logging.getLogger(__name__)

INIT_NEW_TOKEN_RATIO = 0.7
MIN_NEW_TOKEN_RATIO = 0.7 * 0.14
NEW_TOKEN_RATIO_DECAY = (INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / 600
LPM_MAX_QUEUE = 128  # longest-prefix-match costs a tree walk per request: fcfs beyond this
IN_BATCH_PREFIX_MIN = 32
"""In-batch prefix deferral (SGLang's in-batch prefix caching check, applied under every
policy): a waiting request whose uncached part shares at least this many tokens with a request
already admitted to the prefill batch being built is held back to the next batch, where it
finds those tokens in the prefix cache (the admitted one is inserted after its prefill) instead
of computing them a second time. A request is held back at most once per admission, so nothing
starves. Shorter overlaps are not worth a round of latency."""


@dataclass(eq=False)
class _InFlight:
    """A decode step launched on the device whose sampled ids are not yet processed."""

    reqs: list[Req]
    launch: SampleLaunch
    host_ids: torch.Tensor  # filled by a non-blocking copy; read after `event`
    event: Any
    row_of: dict[int, int]  # id(req) -> its row in this step


@dataclass
class StepOutput:
    """What one request produced in one step (sent to the frontend)."""

    rid: str
    new_token_ids: list[int]
    finished: FinishReason | None
    output_logprobs: list[float] = field(default_factory=list)
    output_top_logprobs: list[Any] = field(default_factory=list)
    prompt_logprobs: list[float | None] | None = None
    prompt_top_logprobs: list[Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    retractions: int = 0


@dataclass
class SchedulerStats:
    steps: int = 0
    prefill_steps: int = 0
    decode_steps: int = 0
    mixed_steps: int = 0  # prefill forwards that also decoded the running requests
    overlapped_decode_steps: int = 0  # launched before the previous step was processed
    retractions: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0


class Scheduler:
    def __init__(
        self, args: ServerArgs, runner: ModelRunner, tokenizer: Any, eos_ids: frozenset[int]
    ):
        self.args, self.runner = args, runner
        self.eos_ids = eos_ids
        cache_cls = NoPrefixCache if args.disable_radix_cache else RadixCache
        self.cache = cache_cls(runner.allocator)
        self.kv = KVManager(runner.req_to_token, runner.allocator, self.cache)
        self.sampler = Sampler(runner.ops, runner.model_config.vocab_size)
        self.stop = StopChecker(tokenizer, runner.context_len)
        self.grammars = (
            None
            if tokenizer is None
            else GrammarManager(
                args.grammar_backend, tokenizer, runner.model_config.vocab_size, eos_ids
            )
        )
        self.waiting: deque[Req] = deque()
        self.running: list[Req] = []
        self.chunked: Req | None = None
        self.new_token_ratio = INIT_NEW_TOKEN_RATIO
        self.stats = SchedulerStats()
        self.chunk_size = args.chunked_prefill_size if args.chunked_prefill_size > 0 else None
        self.max_running = runner.max_running_requests
        self.mixed = bool(args.enable_mixed_chunk)
        self.device = runner.device
        self.overlap = runner.runtime.is_async and not args.disable_overlap_schedule
        self._inflight: _InFlight | None = None
        self._early_outputs: list[StepOutput] = []  # drained outside step(): sent by the next

    # --- requests in and out ---------------------------------------------------------------
    def add_request(self, req: Req) -> StepOutput | None:
        """Queue a request; returns an immediate abort output when it can never run."""
        problem = self._validate(req)
        if problem:
            req.finished = FinishReason("abort", message=problem)
            return self._output(req, [])
        if GrammarManager.wants(req):
            if self.grammars is None:
                req.finished = FinishReason(
                    "abort", message="json_schema, regex and ebnf need a tokenizer"
                )
                return self._output(req, [])
            self.grammars.submit(req)  # waits in the grammar queue; `step` polls it
            return None
        self.waiting.append(req)
        return None

    def _validate(self, req: Req) -> str | None:
        n = len(req.prompt_ids)
        if n == 0:
            return "the prompt is empty"
        if n >= self.runner.context_len:
            return f"the prompt has {n} tokens; the context length is {self.runner.context_len}"
        vocab = self.runner.model_config.vocab_size
        if any(t < 0 or t >= vocab for t in req.prompt_ids):
            return f"prompt token ids must be in [0, {vocab})"
        if n + 1 > self.runner.allocator.total_size:
            return (
                f"the prompt has {n} tokens; the KV pool holds {self.runner.allocator.total_size}"
            )
        return None

    def abort(self, rid: str) -> StepOutput | None:
        if self._inflight is not None and any(r.rid == rid for r in self._inflight.reqs):
            # Its KV must be released with every token it was fed known: read the step back.
            self._early_outputs += self._drain()
        compiling = self.grammars.remove(rid) if self.grammars is not None else None
        if compiling is not None:
            compiling.finished = FinishReason("abort", message="aborted")
            return self._output(compiling, [])
        for req in [*self.waiting, *self.running, *([self.chunked] if self.chunked else [])]:
            if req.rid == rid:
                if req in self.waiting:
                    self.waiting.remove(req)
                if req in self.running:
                    self.running.remove(req)
                if req is self.chunked:
                    self.chunked = None
                self.kv.release(req)
                req.finished = FinishReason("abort", message="aborted")
                return self._output(req, [])
        return None

    def has_work(self) -> bool:
        """Anything pending, requests whose grammar is compiling included."""
        return self.has_runnable() or bool(self.grammars and self.grammars.queue)

    def has_runnable(self) -> bool:
        """Something a step can run now (or a grammar queue entry to resolve)."""
        ready = self.grammars is not None and any(
            r.grammar_future.done() for r in self.grammars.queue
        )
        return bool(
            self.waiting
            or self.running
            or self.chunked
            or ready
            or self._inflight is not None
            or self._early_outputs
        )

    # --- one step --------------------------------------------------------------------------
    def step(self) -> list[StepOutput]:
        outputs, self._early_outputs = self._early_outputs, []
        outputs += self._poll_grammars()
        if not (self.waiting or self.running or self.chunked):
            return outputs + self._drain()
        self.stats.steps += 1
        batch = self._prefill_batch()
        if batch is not None:
            self.stats.prefill_steps += 1
            outputs += self._drain()
            return outputs + self._run_prefill(*batch, self._mixed_decode_reqs())
        if self.running and self.overlap and self._can_overlap():
            self.stats.decode_steps += 1
            self.stats.overlapped_decode_steps += self._inflight is not None
            return outputs + self._run_decode_overlapped()
        outputs += self._drain()
        if self.running:
            self.stats.decode_steps += 1
            return outputs + self._run_decode()
        return outputs

    def _poll_grammars(self) -> list[StepOutput]:
        """Requests whose grammar finished compiling join the waiting queue (failures end)."""
        if self.grammars is None:
            return []
        outputs = []
        for req in self.grammars.poll():
            if req.finished is not None:
                outputs.append(self._output(req, []))
            else:
                self.waiting.append(req)
        return outputs

    # --- prefill ---------------------------------------------------------------------------
    def _reserved(self) -> float:
        reqs = self.running + ([self.chunked] if self.chunked else [])
        return sum(r.remaining_new_tokens() * self.new_token_ratio for r in reqs)

    def _prefix_limit(self, req: Req) -> int:
        """At least one token must be fed to get logits; prompt logprobs need the logits of
        the positions they score, so those are not taken from the cache."""
        limit = len(req.fill_ids) - 1
        if req.wants_prompt_logprobs and not req.prompt_logprobs:
            limit = min(limit, max(req.logprob_start_len - 1, 0))
        return limit

    def _order_waiting(self) -> list[Req]:
        if self.args.schedule_policy == "lpm" and len(self.waiting) <= LPM_MAX_QUEUE:
            matched = {
                id(r): self.cache.match_prefix(r.fill_ids[: self._prefix_limit(r)]).indices.numel()
                for r in self.waiting
            }
            return sorted(self.waiting, key=lambda r: -matched[id(r)])
        return list(self.waiting)

    def _prefill_batch(self) -> tuple[list[Req], list[int]] | None:
        """Pick requests (and how many tokens of each) for one prefill forward."""
        budget = self.chunk_size or self.args.max_prefill_tokens
        if self.mixed:
            budget -= len(self.running)  # their decode rows share the forward
        reqs, lens = [], []
        if self.chunked is not None:
            req = self.chunked
            n = min(len(req.fill_ids) - req.kv_len, budget)
            if self.kv.grow(req, n) is None:
                return None  # the chunk cannot get memory now; decode proceeds and frees some
            reqs.append(req)
            lens.append(n)
            budget -= n
        # What this batch will have computed (and cached) once it has run, for the deferral.
        in_batch = RadixCache(_NoSlots) if self.cache.stores_prefixes else None
        if in_batch is not None and self.chunked is not None:
            end = self.chunked.kv_len + lens[0]
            in_batch.insert(self.chunked.fill_ids[:end], _no_slots(end))
        room = self.kv.available() - self._reserved()
        for req in self._order_waiting():
            if budget <= 0 or len(self.running) + len(reqs) >= self.max_running:
                break
            limit = self._prefix_limit(req)
            prefix, last_node = self.kv.match(req, limit)
            if in_batch is not None and not req.prefix_deferred:
                shared = in_batch.match_prefix(req.fill_ids[:limit]).indices.numel()
                if shared - prefix.numel() >= IN_BATCH_PREFIX_MIN:
                    req.prefix_deferred = True  # next round it is not held back again
                    continue
            extend = len(req.fill_ids) - prefix.numel()
            n = extend
            if n > budget:
                if self.chunk_size is None:
                    if reqs:  # unchunked: a long prompt runs alone rather than split
                        break
                elif self.chunked is not None:
                    break  # one request is chunked at a time
                else:
                    n = budget
            need = n + req.remaining_new_tokens() * self.new_token_ratio
            if need > room and (reqs or self.running):
                break
            if not self.kv.admit(req, prefix, last_node, n):
                break
            room -= need
            self.waiting.remove(req)
            req.prefix_deferred = False
            if in_batch is not None:
                in_batch.insert(req.fill_ids[: req.kv_len + n], _no_slots(req.kv_len + n))
            if not req.admitted_once:
                req.cached_tokens = int(prefix.numel())
                self.stats.cached_tokens += req.cached_tokens
                self.stats.prompt_tokens += len(req.prompt_ids)
                req.admitted_once = True
            reqs.append(req)
            lens.append(n)
            budget -= n
            if n < extend:
                self.chunked = req
                break
        return (reqs, lens) if reqs else None

    def _mixed_decode_reqs(self) -> list[Req]:
        """The running requests to decode inside this prefill forward (after the drain, so
        every one's next input token is known): all of them if mixing is on and the pool has a
        slot for each, else none (they wait for the next decode step, which can retract)."""
        if not (self.mixed and self.running) or self.kv.available() < len(self.running):
            return []
        return list(self.running)

    def _run_prefill(
        self, reqs: list[Req], lens: list[int], decode_reqs: list[Req] = ()
    ) -> list[StepOutput]:
        ids, positions, locs, kv_lens, rows = [], [], [], [], []
        logit_rows: list[list[int]] = []  # per request: batch rows whose logits we need
        offset = 0
        for req, n in zip(reqs, lens):
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
        all_reqs, all_lens = reqs, lens
        if decode_reqs:  # one query row each, after the prefill rows
            slots = self.kv.grow_decode(decode_reqs)
            assert slots is not None, "_mixed_decode_reqs checked the room"
            locs.append(slots)
            ids.extend(r.fill_ids[r.kv_len] for r in decode_reqs)
            positions.extend(r.kv_len for r in decode_reqs)
            kv_lens.extend(r.kv_len + 1 for r in decode_reqs)
            flat_rows.extend(range(offset, offset + len(decode_reqs)))
            all_reqs, all_lens = [*reqs, *decode_reqs], [*lens, *[1] * len(decode_reqs)]
            self.stats.mixed_steps += 1
        batch = self._forward_batch(
            ForwardMode.EXTEND, all_reqs, ids, positions, locs, all_lens, kv_lens, flat_rows
        )
        logits = self.runner.forward(batch)
        for req, n in zip(reqs, lens):
            req.kv_len += n
            self.kv.cache_unfinished(req)  # later requests share it while this one runs
        for req in decode_reqs:
            req.kv_len += 1
        # Split the logits rows back per request.
        outputs: list[StepOutput] = []
        sample_reqs, sample_rows = [], []
        cursor = 0
        for req, n, rows in zip(reqs, lens, logit_rows):
            mine = logits[cursor : cursor + len(rows)]
            cursor += len(rows)
            complete = req.kv_len == len(req.fill_ids)
            if req.wants_prompt_logprobs and not req.prompt_logprobs_done:
                self._record_prompt_logprobs(req, mine, req.kv_len - n, complete)
            if complete and req.params.max_new_tokens == 0:  # prefill only: scoring, caching
                req.finished = FinishReason("length", 0)
                self.kv.release(req)
                outputs.append(self._output(req, []))
                if req is self.chunked:
                    self.chunked = None
                continue
            if complete:
                sample_reqs.append(req)
                sample_rows.append(mine[-1])
                if req is self.chunked:
                    self.chunked = None
        if decode_reqs:
            sample_rows.extend(logits[cursor : cursor + len(decode_reqs)])
        if sample_reqs or decode_reqs:
            outputs += self._sample_and_advance(
                [*sample_reqs, *decode_reqs], torch.stack(sample_rows)
            )
            for req in sample_reqs:
                if req.finished is None:
                    self.running.append(req)
        if decode_reqs:
            self.new_token_ratio = max(
                MIN_NEW_TOKEN_RATIO, self.new_token_ratio - NEW_TOKEN_RATIO_DECAY
            )
        return outputs

    def _record_prompt_logprobs(
        self, req: Req, logits: torch.Tensor, start: int, complete: bool
    ) -> None:
        """Logits rows cover positions max(start, lps-1) .. end-1 of this chunk; position p
        scores prompt token p+1."""
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

    # --- decode ----------------------------------------------------------------------------
    def _run_decode(self) -> list[StepOutput]:
        self._finished_early: list[StepOutput] = []
        self._make_room_for_decode()
        if not self.running:
            return self._finished_early
        reqs = list(self.running)
        slots = self.kv.grow_decode(reqs)
        assert slots is not None, "decode room was ensured"
        locs = [slots]
        ids = [req.fill_ids[req.kv_len] for req in reqs]
        positions = [req.kv_len for req in reqs]
        kv_lens = [req.kv_len + 1 for req in reqs]
        batch = self._forward_batch(
            ForwardMode.DECODE,
            reqs,
            ids,
            positions,
            locs,
            [1] * len(reqs),
            kv_lens,
            list(range(len(reqs))),
        )
        logits = self.runner.forward(batch)
        for req in reqs:
            req.kv_len += 1
        outputs = self._finished_early + self._sample_and_advance(reqs, logits)
        self.new_token_ratio = max(
            MIN_NEW_TOKEN_RATIO, self.new_token_ratio - NEW_TOKEN_RATIO_DECAY
        )
        return outputs

    def _can_overlap(self) -> bool:
        """Whether the next decode step may launch before the previous one is processed: no
        request's sampling depends on its latest token (grammar, penalties, min_new_tokens),
        none wants logprobs, and every one gets a slot without retraction."""
        if self.kv.available() < len(self.running):
            return False
        for r in self.running:
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

    def _run_decode_overlapped(self) -> list[StepOutput]:
        """Launch a decode step over the running requests, then process the one before it."""
        reqs = list(self.running)
        prev = self._inflight
        slots = self.kv.grow_decode(reqs)
        assert slots is not None, "_can_overlap checked the room"
        positions = [r.kv_len for r in reqs]
        kv_lens = [r.kv_len + 1 for r in reqs]
        if prev is None:  # every input token is known on the host
            ids: Any = [r.fill_ids[r.kv_len] for r in reqs]
        else:  # every running request was in the previous step: its sampled ids, on device
            rows = [prev.row_of[id(r)] for r in reqs]
            ids = prev.launch.ids
            if len(rows) != len(prev.reqs):
                index = torch.tensor(rows, dtype=torch.int64).to(ids.device, non_blocking=True)
                ids = ids.index_select(0, index)
        for r in reqs:
            r.kv_len += 1
        batch = self._forward_batch(
            ForwardMode.DECODE, reqs, ids, positions, [slots], [1] * len(reqs), kv_lens,
            list(range(len(reqs))),
        )
        logits = self.runner.forward(batch)
        launch = self.sampler.launch(logits, self._sample_inputs(reqs, [None] * len(reqs)))
        host_ids = launch.ids.to("cpu", non_blocking=True)
        event = self.runner.runtime.new_event()
        event.record()
        row_of = {id(r): i for i, r in enumerate(reqs)}
        self._inflight = _InFlight(reqs, launch, host_ids, event, row_of)
        self.new_token_ratio = max(
            MIN_NEW_TOKEN_RATIO, self.new_token_ratio - NEW_TOKEN_RATIO_DECAY
        )
        return self._process_inflight(prev) if prev is not None else []

    def _drain(self) -> list[StepOutput]:
        """Read back and process the step in flight, if any (before any serial step)."""
        prev, self._inflight = self._inflight, None
        return self._process_inflight(prev) if prev is not None else []

    def _process_inflight(self, step: _InFlight) -> list[StepOutput]:
        step.event.synchronize()
        ids = step.host_ids.tolist()
        # Requests that finished (or were aborted) since this step was launched: drop their
        # extra token.
        live = [i for i, r in enumerate(step.reqs) if r.finished is None]
        result = self.sampler.finish(step.launch, ids)
        if len(live) == len(step.reqs):
            return self._advance(step.reqs, result)
        reqs = [step.reqs[i] for i in live]
        sub = SampleOutput(
            [result.ids[i] for i in live],
            [result.logprobs[i] for i in live],
            [result.top_logprobs[i] for i in live],
        )
        return self._advance(reqs, sub)

    def _make_room_for_decode(self) -> None:
        """Every running request needs one slot; retract until they fit."""
        while self.running and self.kv.available() < len(self.running):
            if len(self.running) == 1:
                # Alone and still out of room: its context fills the whole pool.
                req = self.running.pop()
                req.finished = FinishReason("length", len(req.output_ids), "the KV pool is full")
                self.kv.release(req)
                self._finished_early.append(self._output(req, req.output_ids[req.sent_len :]))
                return
            # Retract the request with the fewest output tokens (longest prompt on ties).
            victim = min(self.running, key=lambda r: (len(r.output_ids), -len(r.prompt_ids)))
            self.running.remove(victim)
            self.kv.release(victim)
            victim.retractions += 1
            self.stats.retractions += 1
            self.waiting.appendleft(victim)
            self.new_token_ratio = min(1.0, self.new_token_ratio + 0.1)
            logger.info(
                "retracted request %s (%d output tokens); KV available %d for %d running",
                victim.rid,
                len(victim.output_ids),
                self.kv.available(),
                len(self.running),
            )

    # --- shared ----------------------------------------------------------------------------
    def _forward_batch(
        self, mode, reqs, ids, positions, locs, lens, kv_lens, logit_rows
    ) -> ForwardBatch:
        dev = self.device
        qo = torch.tensor([0, *lens], dtype=torch.int32).cumsum(0, dtype=torch.int32)
        kv = torch.tensor([0, *kv_lens], dtype=torch.int32).cumsum(0, dtype=torch.int32)
        kv_indices = self._gather_kv_indices(reqs, kv, int(kv[-1]))
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

    def _gather_kv_indices(self, reqs: list[Req], kv_indptr: torch.Tensor, total: int):
        """Every request's KV slots, concatenated, read from the request-to-token table where it
        lives with a fixed handful of ops whatever the batch size (a per-request slice and a
        cat cost a few microseconds of host time per request: milliseconds a step at batch
        256): entry j belongs to request b = the last with kv_indptr[b] <= j, at position
        j - kv_indptr[b]. No host sync: `total` is known here."""
        table = self.kv.req_to_token.req_to_token
        dev = table.device
        rows = torch.tensor([r.row for r in reqs], dtype=torch.int64).to(dev, non_blocking=True)
        starts = kv_indptr.to(dev, non_blocking=True).long()
        j = torch.arange(total, dtype=torch.int64, device=dev)
        b = torch.searchsorted(starts[1:], j, right=True)
        return table[rows[b], j - starts[b]]

    def _sample_inputs(self, reqs: list[Req], masks: list[Any]) -> list[SampleInput]:
        return [
            SampleInput(
                params=r.params,
                prompt_ids=r.prompt_ids,
                output_ids=r.output_ids,
                generator=r.generator,
                eos_ids=r.eos_ids,
                top_logprobs_num=r.top_logprobs_num,
                return_logprob=r.return_logprob,
                bitmask=mask,
            )
            for r, mask in zip(reqs, masks)
        ]

    def _sample_and_advance(self, reqs: list[Req], logits: torch.Tensor) -> list[StepOutput]:
        masks = self.grammars.bitmasks(reqs) if self.grammars is not None else [None] * len(reqs)
        result = self.sampler(logits, self._sample_inputs(reqs, masks))
        return self._advance(reqs, result)

    def _advance(self, reqs: list[Req], result: SampleOutput) -> list[StepOutput]:
        """Append each request's new token, check whether it finished, collect outputs."""
        outputs = []
        for i, req in enumerate(reqs):
            interval = req.params.stream_interval or self.args.stream_interval
            token = result.ids[i]
            req.output_ids.append(token)
            if req.return_logprob:
                req.output_logprobs.append(result.logprobs[i])
                req.output_top_logprobs.append(result.top_logprobs[i])
            req.finished = self._check_finished(req, token)
            if req.finished is not None:
                if req in self.running:
                    self.running.remove(req)
                self.kv.release(req)
                outputs.append(self._output(req, req.output_ids[req.sent_len :]))
            elif len(req.output_ids) - req.sent_len >= interval:
                outputs.append(self._output(req, req.output_ids[req.sent_len :]))
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

    def _output(self, req: Req, new_ids: list[int]) -> StepOutput:
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

    def check_idle(self) -> None:
        assert not self.has_work()
        self.kv.check_idle()


class _NoSlots:
    """The allocator of the throwaway tree used for in-batch prefix deferral: it holds token
    ids only (its values are placeholders), and nothing is ever evicted from it."""

    device = torch.device("cpu")


def _no_slots(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.int64)
