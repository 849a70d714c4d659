"""The llguidance grammar backend (`--grammar-backend llguidance`).

llguidance builds its lexer and parser when a matcher is created (it needs no separate
compilation step), so `compile` here checks the grammar against the tokenizer and returns the
grammar text; creating a matcher is cheap. EBNF is converted from GBNF to Lark by llguidance's
own converter. Its matcher reports "stopped" as soon as nothing but EOS may follow; we count
the request as terminated only once a stop token was accepted, as xgrammar does."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import llguidance
import llguidance.torch as llg_torch
import torch
from llguidance import LLMatcher, LLTokenizer

from sglang.constrained.base import (
    GrammarBackend,
    GrammarError,
    GrammarMatcher,
    check_kind,
    clean_message,
)

JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
ANY_OBJECT = '{"type": "object"}'


SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SUBSCHEMAS = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


def strict_schema(schema: Any) -> Any:
    """The schema with `additionalProperties: false` on every object schema that lists
    properties and says nothing of others: xgrammar's strict mode, so both backends generate
    the same language (JSON Schema itself allows unlisted properties by default)."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: strict_schema(sub) for name, sub in out[key].items()}
    for key in (*SUBSCHEMA_LISTS, *SUBSCHEMAS):
        if key in out:
            out[key] = strict_schema(out[key])
    if (
        "properties" in out
        and "additionalProperties" not in out
        and "unevaluatedProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


def grammar_text(kind: str, spec: str) -> str:
    """llguidance's grammar for a constraint; GrammarError when it cannot be built."""
    check_kind(kind)
    try:
        if kind in ("json_schema", "json_object"):
            schema = strict_schema(json.loads(ANY_OBJECT if kind == "json_object" else spec))
            return LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=JSON_OPTIONS)
        if kind == "regex":
            return LLMatcher.grammar_from_regex(spec)
        return llguidance.grammar_from("ebnf", spec)
    except (ValueError, TypeError, RuntimeError) as e:
        raise GrammarError(kind, clean_message(e)) from None


def lark_tokenizer(tokenizer: Any, vocab_size: int, stop_ids: list[int]) -> LLTokenizer:
    """llguidance's tokenizer from a Hugging Face one (the Rust tokenizer's JSON)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError("llguidance needs a fast (Rust-backed) Hugging Face tokenizer")
    text = backend.to_str()
    return LLTokenizer(text, n_vocab=vocab_size, eos_token=stop_ids or None)


class LLGuidanceMatcher(GrammarMatcher):
    def __init__(self, matcher: LLMatcher, stop_ids: frozenset[int]) -> None:
        self._m, self._stop_ids = matcher, stop_ids
        self._accepted = 0
        self._terminated_at: int | None = None  # accepted count after the stop token

    def fill_bitmask(self, row: torch.Tensor) -> None:
        llg_torch.fill_next_token_bitmask(self._m, row.view(1, -1), 0)

    def accept_token(self, token_id: int) -> bool:
        token_id = int(token_id)
        if self._terminated_at is not None:
            return False
        if token_id in self._stop_ids:
            if not (self._m.is_accepting() or self._m.is_stopped()):
                return False
            self._m.consume_token(token_id)
            self._accepted += 1
            self._terminated_at = self._accepted
            return True
        # A refused token would put llguidance's matcher in a permanent error state.
        if self._m.validate_tokens([token_id]) != 1 or not self._m.consume_token(token_id):
            return False
        self._accepted += 1
        return True

    def rollback(self, n: int) -> None:
        if n <= 0:
            return
        if not self._m.rollback(n):
            raise RuntimeError(f"llguidance could not roll back {n} tokens: {self._m.get_error()}")
        self._accepted -= n
        if self._terminated_at is not None and self._accepted < self._terminated_at:
            self._terminated_at = None

    def is_terminated(self) -> bool:
        return self._terminated_at is not None


class LLGuidanceBackend(GrammarBackend):
    name = "llguidance"

    def __init__(
        self, tokenizer: Any, vocab_size: int, stop_ids: Iterable[int], threads: int = 2
    ) -> None:
        super().__init__(tokenizer, vocab_size, stop_ids, threads)
        self._tokenizer = lark_tokenizer(tokenizer, vocab_size, self.stop_ids)
        self._stop_set = frozenset(self.stop_ids)

    @classmethod
    def validate(cls, kind: str, spec: str) -> None:
        problem = LLMatcher.validate_grammar(grammar_text(kind, spec))
        if problem:
            raise GrammarError(kind, problem.strip())

    def compile(self, kind: str, spec: str) -> str:
        grammar = grammar_text(kind, spec)
        problem = LLMatcher.validate_grammar(grammar, self._tokenizer)
        if problem:
            raise GrammarError(kind, problem.strip())
        return grammar

    def matcher(self, compiled: str) -> LLGuidanceMatcher:
        m = LLMatcher(self._tokenizer, compiled, log_level=0)
        if m.is_error():
            raise GrammarError("grammar", m.get_error())
        return LLGuidanceMatcher(m, self._stop_set)
