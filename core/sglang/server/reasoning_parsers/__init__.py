"""Reasoning parsers by name (`--reasoning-parser`).

The chat route's use:
    parser = get_reasoning_parser(name)
    reasoning, content = parser.parse(text)                     # whole output
    s = parser.stream(); s.feed(delta) / s.finish() -> (reasoning_delta, content_delta)
"""

from __future__ import annotations

import importlib

from sglang.server.reasoning_parsers.base import ReasoningParser, StreamingReasoningParser

REASONING_PARSERS = {
    "deepseek-r1": ("sglang.server.reasoning_parsers.deepseek_r1", "DeepSeekR1ReasoningParser"),
    "qwen3": ("sglang.server.reasoning_parsers.qwen3", "Qwen3ReasoningParser"),
    "qwen3-thinking": ("sglang.server.reasoning_parsers.qwen3", "Qwen3ThinkingReasoningParser"),
}

__all__ = [
    "REASONING_PARSERS",
    "ReasoningParser",
    "StreamingReasoningParser",
    "get_reasoning_parser",
]


def get_reasoning_parser(name: str) -> ReasoningParser:
    """The parser of a `--reasoning-parser` name; ValueError naming the choices."""
    if name not in REASONING_PARSERS:
        choices = ", ".join(sorted(REASONING_PARSERS))
        raise ValueError(f"unknown reasoning parser {name!r}; choose one of {choices}")
    module, cls = REASONING_PARSERS[name]
    return getattr(importlib.import_module(module), cls)()
