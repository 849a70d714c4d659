"""The grammar backend interface: compile a constraint, then drive one matcher per request.

A constraint is a (kind, spec) pair of strings:
- `json_schema`: a JSON Schema document (a JSON string);
- `regex`: a regular expression the whole output must match;
- `ebnf`: a grammar in GBNF-style EBNF (`root ::= ...`, as llama.cpp and xgrammar write it);
- `json_object`: any JSON object (spec ""), OpenAI's `response_format: {"type": "json_object"}`.

JSON is generated compactly (no free whitespace; ", " and ": " separators): a free-whitespace
grammar lets a small model pad forever. Schemas are followed strictly (xgrammar's strict mode:
no properties or items beyond those the schema names unless it allows them).

Bitmasks are int32 rows of ceil(vocab / 32) words, bit j % 32 of word j // 32 set when token j is
allowed (the `grammar.apply_bitmask` op's packing). A matcher accepts only tokens its last mask
allowed; the stop (EOS) tokens are allowed exactly when the grammar can end, and accepting one
terminates the matcher.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

KINDS = ("json_schema", "regex", "ebnf", "json_object")
ANY_OBJECT_SCHEMAS = ({"type": "object"},)


class GrammarError(ValueError):
    """An invalid constraint; the message names the kind and the problem."""

    def __init__(self, kind: str, problem: str) -> None:
        self.kind, self.problem = kind, problem
        super().__init__(f"invalid {kind}: {problem}")


_NATIVE_PREFIX = re.compile(r"^\s*\[[0-9:]+\]\s+\S+?\.(cc|cpp|h):\d+:\s*")


def clean_message(error: BaseException) -> str:
    """A backend's error text without its C++ source location ("[12:00:00] file.cc:42: ")."""
    text = str(error).strip()
    text = _NATIVE_PREFIX.sub("", text)
    text = text.replace("Check failed: (error.empty()) is false: ", "")
    return text.strip() or type(error).__name__


def constraint_of(params: Any) -> tuple[str, str] | None:
    """The (kind, spec) a request's sampling params ask for, or None.

    A json_schema that is exactly {"type": "object"} (what the OpenAI route sends for
    `json_object`) becomes the json_object kind, so every spelling shares one compiled grammar."""
    if params.json_schema is not None:
        try:
            parsed = json.loads(params.json_schema)
        except (TypeError, ValueError):
            parsed = None
        if parsed in ANY_OBJECT_SCHEMAS:
            return ("json_object", "")
        return ("json_schema", params.json_schema)
    if params.regex is not None:
        return ("regex", params.regex)
    if params.ebnf is not None:
        return ("ebnf", params.ebnf)
    return None


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown constraint kind {kind!r}; expected one of {KINDS}")


class GrammarMatcher(ABC):
    """One request's position in its grammar."""

    @abstractmethod
    def fill_bitmask(self, row: torch.Tensor) -> None:
        """Write the allowed next tokens into `row`: a contiguous CPU int32 [ceil(V/32)]."""

    @abstractmethod
    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False (state unchanged) when the grammar forbids it."""

    @abstractmethod
    def rollback(self, n: int) -> None:
        """Undo the last `n` accepted tokens."""

    @abstractmethod
    def is_terminated(self) -> bool:
        """True once a stop token was accepted: the output is complete."""


class GrammarBackend(ABC):
    """Compiles constraints for one tokenizer and makes matchers over compiled grammars.

    `validate` needs no tokenizer and is cheap (it parses the constraint without building
    token tables), so the frontend calls it to answer bad requests synchronously; `compile` is
    the expensive, tokenizer-bound step the scheduler runs in its thread pool."""

    name: str = ""

    def __init__(
        self, tokenizer: Any, vocab_size: int, stop_ids: Iterable[int], threads: int = 2
    ) -> None:
        """stop_ids: the EOS ids, allowed exactly where the grammar may end; threads: how
        many the backend may use to compile."""
        self.tokenizer, self.vocab_size, self.threads = tokenizer, vocab_size, threads
        self.stop_ids = sorted({int(t) for t in stop_ids if 0 <= int(t) < vocab_size})

    @classmethod
    @abstractmethod
    def validate(cls, kind: str, spec: str) -> None:
        """Raise GrammarError when the constraint is invalid."""

    @abstractmethod
    def compile(self, kind: str, spec: str) -> Any:
        """A compiled grammar (opaque, shareable between requests); GrammarError if invalid."""

    @abstractmethod
    def matcher(self, compiled: Any) -> GrammarMatcher:
        """A fresh matcher at the start of the compiled grammar."""

    def fill_bitmasks(self, matchers: list[GrammarMatcher], bitmask: torch.Tensor) -> None:
        """Fill row i of `bitmask` (CPU int32 [>= len(matchers), words]) for matchers[i]. A
        backend may fill the rows in parallel; the default fills them one by one."""
        for i, m in enumerate(matchers):
            m.fill_bitmask(bitmask[i])

    def bitmask_words(self) -> int:
        return (self.vocab_size + 31) // 32
