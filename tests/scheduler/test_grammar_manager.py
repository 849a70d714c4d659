"""GrammarManager, the scheduler's side: the grammar queue (a request waits while its grammar
compiles, then gets a matcher or an abort naming the problem), timeouts, removal, and the
per-step bitmask rows."""

from __future__ import annotations

import threading
import time

import torch
from sglang.constrained import GrammarBackend, GrammarError, GrammarMatcher
from sglang.constrained.registry import register_grammar_backend
from sglang.sampling.params import SamplingParams
from sglang.scheduler.grammar_manager import GrammarManager
from sglang.scheduler.req import Req

GATE = threading.Event()
VOCAB = 70  # three words, the last partly used


class OnlyToken(GrammarMatcher):
    """Allows one token (the spec's number), then the stop token 0."""

    def __init__(self, token: int) -> None:
        self.token, self.accepted = token, []

    def fill_bitmask(self, row: torch.Tensor) -> None:
        row.zero_()
        t = 0 if self.accepted else self.token
        row[t // 32] = 1 << (t % 32) if t % 32 != 31 else -(2**31)

    def accept_token(self, token_id: int) -> bool:
        expected = 0 if self.accepted else self.token
        if token_id != expected or len(self.accepted) == 2:
            return False
        self.accepted.append(token_id)
        return True

    def rollback(self, n: int) -> None:
        del self.accepted[len(self.accepted) - n :]

    def is_terminated(self) -> bool:
        return len(self.accepted) == 2


class GatedBackend(GrammarBackend):
    name = "gated-test"

    @classmethod
    def validate(cls, kind: str, spec: str) -> None:
        pass

    def compile(self, kind: str, spec: str) -> int:
        assert GATE.wait(10)
        if spec == "slow":
            time.sleep(1)
        if not spec.isdigit():
            raise GrammarError(kind, f"{spec!r} is not a token number")
        return int(spec)

    def matcher(self, compiled: int) -> GrammarMatcher:
        return OnlyToken(compiled)


register_grammar_backend("gated-test", lambda: GatedBackend)


def req(rid: str, regex: str | None) -> Req:
    return Req(rid=rid, prompt_ids=[1, 2], params=SamplingParams.from_dict({"regex": regex}))


def manager(**kw) -> GrammarManager:
    return GrammarManager("gated-test", tokenizer=None, vocab_size=VOCAB, stop_ids=[0], **kw)


def test_queue_until_compiled_then_matcher():
    GATE.clear()
    m = manager()
    a, b = req("a", "5"), req("b", "5")
    m.submit(a)
    m.submit(b)
    assert m.poll() == [] and len(m.queue) == 2
    GATE.set()
    a.grammar_future.result(10)
    ready = m.poll()
    assert ready == [a, b] and m.queue == []
    assert isinstance(a.grammar, OnlyToken) and a.grammar is not b.grammar
    assert a.finished is None and a.grammar_future is None
    assert m.cache.misses == 1 and m.cache.hits == 1
    m.shutdown()


def test_compile_error_aborts_with_the_message():
    GATE.set()
    m = manager()
    r = req("r", "x+")
    m.submit(r)
    r.grammar_future.exception(10)
    assert m.poll() == [r]
    assert r.finished.type == "abort"
    assert r.finished.message == "invalid regex: 'x+' is not a token number"
    m.shutdown()


def test_timeout_and_remove():
    GATE.set()
    m = manager(timeout_s=0.0)
    late = req("late", "slow")
    m.submit(late)
    assert m.poll() == [late]
    assert "did not compile within" in late.finished.message
    m2 = manager()
    gone = req("gone", "slow")
    m2.submit(gone)
    assert m2.remove("gone") is gone and m2.queue == []
    assert m2.remove("gone") is None
    m.shutdown()
    m2.shutdown()


def test_bitmask_rows_and_advance():
    GATE.set()
    m = manager()
    reqs = [req("c", "33"), req("free", None), req("d", "69")]
    for r in (reqs[0], reqs[2]):
        m.submit(r)
        r.grammar_future.result(10)
    m.poll()
    rows = m.bitmasks(reqs)
    assert rows[1] is None
    assert rows[0].shape == (3,) and rows[0].dtype == torch.int32
    assert rows[0].tolist() == [0, 2, 0] and rows[2].tolist() == [0, 0, 32]
    assert m.advance(reqs[0], 33) is None
    refused = m.advance(reqs[2], 5)
    assert refused.type == "abort" and "token 5" in refused.message
    assert m.bitmasks(reqs)[0].tolist() == [1, 0, 0]
    assert m.bitmasks([reqs[1]]) == [None]
    m.shutdown()
