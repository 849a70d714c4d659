"""GrammarCache: compiles off the calling thread, shares in-flight and failed compilations,
evicts the least recently used entry."""

from __future__ import annotations

import threading

import pytest
from sglang.constrained import GrammarError
from sglang.constrained.cache import GrammarCache


class Recorder:
    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.threads: set[str] = set()
        self.gate = gate

    def __call__(self, kind: str, spec: str) -> str:
        self.calls.append((kind, spec))
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            assert self.gate.wait(10)
        if spec == "bad":
            raise GrammarError(kind, "bad spec")
        return f"{kind}:{spec}"


def test_compiles_in_the_pool_and_shares_in_flight_work():
    gate = threading.Event()
    compile_fn = Recorder(gate)
    cache = GrammarCache(compile_fn, capacity=4, threads=2)
    first = cache.get("regex", "a+")
    again = cache.get("regex", "a+")
    assert again is first and not first.done()
    gate.set()
    assert first.result(10) == "regex:a+"
    assert compile_fn.calls == [("regex", "a+")]
    assert threading.current_thread().name not in compile_fn.threads
    assert all(name.startswith("grammar") for name in compile_fn.threads)
    assert (cache.hits, cache.misses) == (1, 1)
    cache.shutdown()


def test_errors_are_cached():
    compile_fn = Recorder()
    cache = GrammarCache(compile_fn)
    with pytest.raises(GrammarError, match="bad spec"):
        cache.get("ebnf", "bad").result(10)
    with pytest.raises(GrammarError):
        cache.get("ebnf", "bad").result(10)
    assert compile_fn.calls == [("ebnf", "bad")]
    cache.shutdown()


def test_lru_eviction():
    compile_fn = Recorder()
    cache = GrammarCache(compile_fn, capacity=2)
    for spec in ("a", "b"):
        cache.get("regex", spec).result(10)
    cache.get("regex", "a").result(10)  # a is now the most recent
    cache.get("regex", "c").result(10)  # evicts b
    assert len(cache) == 2
    cache.get("regex", "a").result(10)
    cache.get("regex", "b").result(10)
    assert compile_fn.calls == [("regex", s) for s in ("a", "b", "c", "b")]
    cache.shutdown()


def test_key_includes_the_kind():
    compile_fn = Recorder()
    cache = GrammarCache(compile_fn)
    assert cache.get("regex", "x").result(10) == "regex:x"
    assert cache.get("ebnf", "x").result(10) == "ebnf:x"
    cache.shutdown()
