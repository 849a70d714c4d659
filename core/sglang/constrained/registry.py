"""Grammar backends by name (`--grammar-backend`), and the frontend's synchronous validation.

Backends are imported on first use, so naming them (for the CLI's choices) costs nothing.
`register_grammar_backend` lets a package add its own."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from sglang.constrained.base import GrammarBackend, GrammarError, constraint_of
from sglang.server_args import DEFAULT_GRAMMAR_BACKEND as DEFAULT_GRAMMAR_BACKEND

_BACKENDS: dict[str, str | Callable[[], type[GrammarBackend]]] = {
    "xgrammar": "sglang.constrained.xgrammar:XGrammarBackend",
    "llguidance": "sglang.constrained.llguidance:LLGuidanceBackend",
}


def register_grammar_backend(name: str, cls: str | Callable[[], type[GrammarBackend]]) -> None:
    """`cls`: "module:Class", or a callable returning the class (imported lazily either way)."""
    _BACKENDS[name] = cls
    _validate.cache_clear()


def grammar_backends() -> tuple[str, ...]:
    return tuple(_BACKENDS)


def backend_class(name: str) -> type[GrammarBackend]:
    if name not in _BACKENDS:
        raise ValueError(f"unknown grammar backend {name!r}; choose one of {grammar_backends()}")
    target = _BACKENDS[name]
    if callable(target):
        return target()
    module, attr = target.split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise ValueError(f"grammar backend {name!r} is not installed: {e}") from e


def create_backend(
    name: str, tokenizer: Any, vocab_size: int, stop_ids: Any, threads: int = 2
) -> GrammarBackend:
    return backend_class(name)(tokenizer, vocab_size, stop_ids, threads=threads)


@functools.lru_cache(maxsize=1024)
def _validate(name: str, kind: str, spec: str) -> GrammarError | None:
    try:
        backend_class(name).validate(kind, spec)
    except GrammarError as e:
        return e
    return None


def validate_spec(name: str, kind: str, spec: str) -> None:
    """Raise GrammarError when `spec` of `kind` is invalid for the backend `name` (cached)."""
    error = _validate(name, kind, spec)
    if error is not None:
        raise GrammarError(error.kind, error.problem)


def validate_constraint(name: str, params: Any) -> None:
    """Raise GrammarError when the request's json_schema / regex / ebnf is invalid for the
    backend `name`. Parses without a tokenizer (milliseconds; answers are cached)."""
    constraint = constraint_of(params)
    if constraint is not None:
        validate_spec(name, *constraint)
