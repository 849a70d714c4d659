"""Structured outputs: grammar backends (xgrammar, llguidance), compiled-grammar cache, and the
scheduler's grammar queue. See base.py for the interface."""

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
