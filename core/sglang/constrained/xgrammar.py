"""The xgrammar grammar backend (the default).

xgrammar compiles a grammar against the tokenizer's vocabulary once (an adaptive token-mask
cache), after which filling a mask costs microseconds. The tokenizer info's stop tokens are our
EOS ids, so EOS is allowed exactly where the grammar may end, and accepting it terminates the
matcher."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import xgrammar as xgr

from sglang.constrained.base import (
    GrammarBackend,
    GrammarError,
    GrammarMatcher,
    check_kind,
    clean_message,
)

JSON_OPTIONS = dict(any_whitespace=False)
PARALLEL_FILL_MIN = 4  # batches this large fill their masks on xgrammar's own threads
ANY_OBJECT = '{"type": "object"}'


class XGrammarMatcher(GrammarMatcher):
    def __init__(self, matcher: xgr.GrammarMatcher) -> None:
        self._m = matcher

    def fill_bitmask(self, row: torch.Tensor) -> None:
        self._m.fill_next_token_bitmask(row.view(1, -1), 0)

    def accept_token(self, token_id: int) -> bool:
        return bool(self._m.accept_token(int(token_id)))

    def rollback(self, n: int) -> None:
        if n > 0:
            self._m.rollback(n)

    def is_terminated(self) -> bool:
        return bool(self._m.is_terminated())


class XGrammarBackend(GrammarBackend):
    name = "xgrammar"

    def __init__(
        self, tokenizer: Any, vocab_size: int, stop_ids: Iterable[int], threads: int = 2
    ) -> None:
        super().__init__(tokenizer, vocab_size, stop_ids, threads)
        info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=self.stop_ids or None
        )
        self._compiler = xgr.GrammarCompiler(info, max_threads=threads, cache_enabled=False)
        fill_threads = max(1, min(8, (os.cpu_count() or 1) // 2))
        self._batch = (
            xgr.BatchGrammarMatcher(max_threads=fill_threads) if fill_threads > 1 else None
        )

    @classmethod
    def validate(cls, kind: str, spec: str) -> None:
        check_kind(kind)
        try:
            if kind == "json_schema":
                xgr.Grammar.from_json_schema(spec, **JSON_OPTIONS)
            elif kind == "regex":
                xgr.Grammar.from_regex(spec)
            elif kind == "ebnf":
                xgr.Grammar.from_ebnf(spec)
        except (RuntimeError, ValueError, TypeError) as e:
            raise GrammarError(kind, clean_message(e)) from None

    def compile(self, kind: str, spec: str) -> xgr.CompiledGrammar:
        check_kind(kind)
        c = self._compiler
        try:
            if kind == "json_schema":
                return c.compile_json_schema(spec, **JSON_OPTIONS)
            if kind == "json_object":
                return c.compile_json_schema(ANY_OBJECT, **JSON_OPTIONS)
            if kind == "regex":
                return c.compile_regex(spec)
            return c.compile_grammar(spec)
        except (RuntimeError, ValueError, TypeError) as e:
            raise GrammarError(kind, clean_message(e)) from None

    def matcher(self, compiled: xgr.CompiledGrammar) -> XGrammarMatcher:
        return XGrammarMatcher(xgr.GrammarMatcher(compiled))

    def fill_bitmasks(self, matchers: list[GrammarMatcher], bitmask: torch.Tensor) -> None:
        """Large batches fill in parallel on xgrammar's C++ threads (up to half the cores, at
        most 8), synchronously: a Python thread overlapping the forward pass fought torch's
        OpenMP threads and was slower (docs/benchmarks.md)."""
        if self._batch is None or len(matchers) < PARALLEL_FILL_MIN:
            return super().fill_bitmasks(matchers, bitmask)
        self._batch.batch_fill_next_token_bitmask([m._m for m in matchers], bitmask)
