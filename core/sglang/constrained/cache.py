"""Compiled grammars: an LRU cache of compilations running in a thread pool.

Entries are `Future`s keyed by (kind, spec), so a compilation already under way is shared by
every request that asks for the same constraint, and a failed one (an invalid grammar) answers
repeats at once with its error. Only the scheduler's thread calls `get`; the pool's threads
only run `compile`."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

DEFAULT_CAPACITY = 256


class GrammarCache:
    def __init__(
        self,
        compile_fn: Callable[[str, str], Any],
        capacity: int = DEFAULT_CAPACITY,
        threads: int = 2,
    ) -> None:
        self._compile = compile_fn
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Future] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grammar")
        self.hits = self.misses = 0

    def get(self, kind: str, spec: str) -> Future:
        """The compilation of (kind, spec): done when cached, else running in the pool."""
        key = (kind, spec)
        fut = self._entries.get(key)
        if fut is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return fut
        self.misses += 1
        fut = self._pool.submit(self._compile, kind, spec)
        self._entries[key] = fut
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)  # a running future lives on with its requests
        return fut

    def __len__(self) -> int:
        return len(self._entries)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
