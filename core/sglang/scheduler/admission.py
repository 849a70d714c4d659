"""Admission and prefill planning: which waiting requests join the next prefill forward, and
how many of their tokens.

The chunked request continues first. Then waiting requests in policy order (policy.py:
`--schedule-policy`) while the token budget (`--chunked-prefill-size`, else
`--max-prefill-tokens`, less one row per running request when mixing), the running limit and
the KV room last: each admitted request must fit its new tokens plus `new_token_ratio` x its
remaining output tokens next to what the running requests are expected to need.

In-batch prefix deferral: a waiting request whose uncached part shares at least
`IN_BATCH_PREFIX_MIN` tokens with a request already admitted to this batch waits for the next
batch, where it finds them in the prefix cache; it is held back at most once per admission.
"""

from __future__ import annotations

import random

import torch

from sglang.cache.radix_cache import RadixCache
from sglang.model_executor.model_runner import ModelRunner
from sglang.scheduler.kv_manager import KVManager
from sglang.scheduler.policy import by_priority, order_waiting
from sglang.scheduler.records import NewTokenRatio, PrefillPlan, Queues, SchedulerStats
from sglang.scheduler.req import Req
from sglang.server_args import ServerArgs

IN_BATCH_PREFIX_MIN = 32  # shorter shared prefixes are not worth a round of latency


class Admission:
    def __init__(
        self,
        args: ServerArgs,
        runner: ModelRunner,
        kv: KVManager,
        queues: Queues,
        ratio: NewTokenRatio,
        stats: SchedulerStats,
    ) -> None:
        self.args, self.kv, self.queues, self.ratio, self.stats = args, kv, queues, ratio, stats
        self.runner = runner
        self.rng = random.Random(args.random_seed)  # the random policy's shuffles
        self.max_running = runner.max_running_requests
        self.chunk_size = args.chunked_prefill_size if args.chunked_prefill_size > 0 else None
        self.mixed = bool(args.enable_mixed_chunk)

    def never_runs(self, req: Req) -> str | None:
        """Why a request can never be admitted (then it is aborted at once), or None."""
        n, runner = len(req.prompt_ids), self.runner
        if n == 0:
            return "the prompt is empty"
        if n >= runner.context_len:
            return f"the prompt has {n} tokens; the context length is {runner.context_len}"
        vocab = runner.model_config.vocab_size
        if any(t < 0 or t >= vocab for t in req.prompt_ids):
            return f"prompt token ids must be in [0, {vocab})"
        if n + 1 > runner.allocator.total_size:
            return f"the prompt has {n} tokens; the KV pool holds {runner.allocator.total_size}"
        return None

    def _reserved(self) -> float:
        return sum(r.remaining_new_tokens() * self.ratio.value for r in self.queues.occupying())

    @staticmethod
    def prefix_limit(req: Req) -> int:
        """At least one token must be fed to get logits; prompt logprobs need the logits of
        the positions they score, so those are not taken from the cache."""
        limit = len(req.fill_ids) - 1
        if req.wants_prompt_logprobs and not req.prompt_logprobs:
            limit = min(limit, max(req.logprob_start_len - 1, 0))
        return limit

    def _order_waiting(self) -> list[Req]:
        cache = self.kv.cache
        match = None
        if cache.stores_prefixes:

            def match(r: Req):
                m = cache.match_prefix(r.fill_ids[: self.prefix_limit(r)])
                return m.indices.numel(), m.last_node

        root = getattr(cache, "root", None)
        order = order_waiting(self.args.schedule_policy, self.queues.waiting, match, root, self.rng)
        if self.args.priority_scheduling:
            order = by_priority(order, self.args.schedule_low_priority_values_first)
        return order

    def plan(self) -> PrefillPlan | None:
        """Admit requests for one prefill forward (allocating their KV), or None."""
        queues, kv = self.queues, self.kv
        budget = self.chunk_size or self.args.max_prefill_tokens
        if self.mixed:
            budget -= len(queues.running)  # their decode rows share the forward
        reqs, lens = [], []
        if queues.chunked is not None:
            req = queues.chunked
            n = min(len(req.fill_ids) - req.kv_len, budget)
            if kv.grow(req, n) is None:
                return None  # the chunk cannot get memory now; decode proceeds and frees some
            reqs.append(req)
            lens.append(n)
            budget -= n
        # What this batch will have computed (and cached) once it has run, for the deferral:
        # the token ids, put in a tree when a later request is checked against them.
        in_batch = InBatch() if kv.cache.stores_prefixes else None
        if in_batch is not None and queues.chunked is not None:
            in_batch.add(queues.chunked.fill_ids[: queues.chunked.kv_len + lens[0]])
        room = kv.available() - self._reserved()
        for req in self._order_waiting():
            if budget <= 0 or len(queues.running) + len(reqs) >= self.max_running:
                break
            limit = self.prefix_limit(req)
            prefix, last_node = kv.match(req, limit)
            if in_batch is not None and not req.prefix_deferred and in_batch:
                shared = in_batch.shared(req.fill_ids[:limit])
                if shared - prefix.numel() >= IN_BATCH_PREFIX_MIN:
                    req.prefix_deferred = True  # next round it is not held back again
                    continue
            extend = len(req.fill_ids) - prefix.numel()
            n = extend
            if n > budget:
                if self.chunk_size is None:
                    if reqs:  # unchunked: a long prompt runs alone rather than split
                        break
                elif queues.chunked is not None:
                    break  # one request is chunked at a time
                else:
                    n = budget
            need = n + req.remaining_new_tokens() * self.ratio.value
            if need > room and (reqs or queues.running):
                break
            if not kv.admit(req, prefix, last_node, n):
                break
            room -= need
            queues.waiting.remove(req)
            req.prefix_deferred = False
            if in_batch is not None:
                in_batch.add(req.fill_ids[: req.kv_len + n])
            if not req.admitted_once:
                req.cached_tokens = int(prefix.numel())
                self.stats.cached_tokens += req.cached_tokens
                self.stats.prompt_tokens += len(req.prompt_ids)
                req.admitted_once = True
            reqs.append(req)
            lens.append(n)
            budget -= n
            if n < extend:
                queues.chunked = req
                break
        return PrefillPlan(reqs, lens) if reqs else None

    def mixed_decode_reqs(self) -> list[Req]:
        """The running requests to decode inside this prefill forward (called after the drain,
        so every one's next input token is known): all of them if mixing is on and the pool has
        a slot for each, else none (they wait for the next decode step, which can retract)."""
        running = self.queues.running
        if not (self.mixed and running) or self.kv.available() < len(running):
            return []
        return list(running)


class InBatch:
    """The token ids a prefill batch computes, as a prefix tree built only once a request is
    checked against them (a batch of one request never builds one)."""

    def __init__(self) -> None:
        self.tree: RadixCache | None = None
        self.pending: list[list[int]] = []

    def __bool__(self) -> bool:
        return bool(self.pending) or self.tree is not None

    def add(self, ids: list[int]) -> None:
        self.pending.append(ids)

    def shared(self, ids: list[int]) -> int:
        """How many leading tokens of `ids` the batch computes."""
        if self.tree is None:
            self.tree = RadixCache(_NoSlots)
        for done in self.pending:
            self.tree.insert(done, _no_slots(len(done)))
        self.pending.clear()
        return self.tree.match_prefix(ids).indices.numel()


class _NoSlots:
    """The allocator of the throwaway tree used for in-batch prefix deferral: it holds token
    ids only (its values are placeholders), and nothing is ever evicted from it."""

    device = torch.device("cpu")


def _no_slots(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.int64)
