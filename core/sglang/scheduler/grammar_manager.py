"""The scheduler's side of structured outputs: the grammar queue, batch bitmasks, advancing.

A constrained request first waits in the grammar queue while its grammar compiles in the
cache's thread pool (SGLang's order), so the scheduler keeps decoding the others; `poll`, called
at every step, moves it on once the compilation is done (or finishes it with the error).
Each step `bitmasks` fills one row per constrained request; after sampling, `advance` feeds the
sampled token to the request's matcher. A matcher's state is exactly the request's output so
far: retraction keeps both, and re-prefilling feeds no token to it.

The tokenizer-bound backend is built on the first compilation, in the pool, so servers that
never see a constraint pay nothing at startup."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import torch

from sglang.constrained.base import GrammarBackend, GrammarError, constraint_of
from sglang.constrained.cache import DEFAULT_CAPACITY, GrammarCache
from sglang.constrained.registry import create_backend
from sglang.scheduler.req import FinishReason, Req

logger = logging.getLogger(__name__)

COMPILE_TIMEOUT_S = 300.0


class GrammarManager:
    def __init__(
        self,
        backend_name: str,
        tokenizer: Any,
        vocab_size: int,
        stop_ids: Any,
        threads: int = 2,
        capacity: int = DEFAULT_CAPACITY,
        timeout_s: float = COMPILE_TIMEOUT_S,
    ) -> None:
        self.backend_name, self.tokenizer = backend_name, tokenizer
        self.vocab_size, self.stop_ids, self.threads = vocab_size, frozenset(stop_ids), threads
        self.timeout_s = timeout_s
        self.words = (vocab_size + 31) // 32
        self._backend: GrammarBackend | None = None
        self._lock = threading.Lock()
        self.cache = GrammarCache(self._compile, capacity, threads)
        self.queue: list[Req] = []
        self._buffer = torch.empty(0, self.words, dtype=torch.int32)

    # --- compilation -----------------------------------------------------------------------
    def backend(self) -> GrammarBackend:
        with self._lock:
            if self._backend is None:
                start = time.monotonic()
                self._backend = create_backend(
                    self.backend_name, self.tokenizer, self.vocab_size, self.stop_ids, self.threads
                )
                logger.info(
                    "grammar backend %s ready in %.2f s",
                    self.backend_name,
                    time.monotonic() - start,
                )
            return self._backend

    def _compile(self, kind: str, spec: str) -> Any:
        return self.backend().compile(kind, spec)

    @staticmethod
    def wants(req: Req) -> bool:
        return constraint_of(req.params) is not None

    def submit(self, req: Req) -> None:
        """Start (or share) the compilation; the request waits in the queue until `poll`."""
        req.grammar_future = self.cache.get(*constraint_of(req.params))
        req.grammar_wait_start = time.monotonic()
        self.queue.append(req)

    def poll(self) -> list[Req]:
        """Requests whose grammar is resolved, removed from the queue: each has a matcher, or
        is finished with an abort naming the problem."""
        if not self.queue:
            return []
        done, now = [], time.monotonic()
        for req in self.queue:
            fut = req.grammar_future
            if fut.done():
                try:
                    req.grammar = self.backend().matcher(fut.result())
                except GrammarError as e:
                    req.finished = FinishReason("abort", message=str(e))
                except Exception as e:  # noqa: BLE001 - a backend failure ends this request only
                    logger.exception("grammar compilation failed")
                    req.finished = FinishReason("abort", message=f"grammar backend error: {e}")
            elif now - req.grammar_wait_start > self.timeout_s:
                req.finished = FinishReason(
                    "abort", message=f"the grammar did not compile within {self.timeout_s:.0f} s"
                )
            else:
                continue
            req.grammar_future = None
            done.append(req)
        if done:
            self.queue = [r for r in self.queue if r.grammar_future is not None]
        return done

    def remove(self, rid: str) -> Req | None:
        for req in self.queue:
            if req.rid == rid:
                self.queue.remove(req)
                req.grammar_future = None
                return req
        return None

    # --- per step --------------------------------------------------------------------------
    def bitmasks(self, reqs: list[Req]) -> list[torch.Tensor | None]:
        """One int32 [words] row per constrained request (None for the others). The rows are
        views of a buffer reused by the next call."""
        if all(r.grammar is None for r in reqs):
            return [None] * len(reqs)
        if self._buffer.shape[0] < len(reqs):
            self._buffer = torch.empty(
                max(len(reqs), 2 * self._buffer.shape[0]), self.words, dtype=torch.int32
            )
        constrained = [r for r in reqs if r.grammar is not None]
        self.backend().fill_bitmasks([r.grammar for r in constrained], self._buffer)
        rows: list[torch.Tensor | None] = []
        k = 0
        for req in reqs:
            if req.grammar is None:
                rows.append(None)
            else:
                rows.append(self._buffer[k])
                k += 1
        return rows

    @staticmethod
    def advance(req: Req, token_id: int) -> FinishReason | None:
        """Feed the sampled token; an abort when the grammar refuses it (only possible when
        nothing it allows could be sampled, e.g. every allowed logit was -inf)."""
        if req.grammar.accept_token(token_id):
            return None
        return FinishReason("abort", message=f"the grammar does not allow token {token_id}")

    def shutdown(self) -> None:
        self.cache.shutdown()
