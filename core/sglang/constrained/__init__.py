"""Structured outputs: grammar backends (xgrammar, llguidance) and the compiled-grammar cache.
See base.py for the interface; the scheduler's grammar queue is sglang.scheduler.grammar_manager."""

from sglang.constrained.base import (
    KINDS,
    GrammarBackend,
    GrammarError,
    GrammarMatcher,
    constraint_of,
)
from sglang.constrained.registry import (
    DEFAULT_GRAMMAR_BACKEND,
    create_backend,
    grammar_backends,
    register_grammar_backend,
    validate_constraint,
)

__all__ = [
    "DEFAULT_GRAMMAR_BACKEND",
    "KINDS",
    "GrammarBackend",
    "GrammarError",
    "GrammarMatcher",
    "constraint_of",
    "create_backend",
    "grammar_backends",
    "register_grammar_backend",
    "validate_constraint",
]
