"""Reasoning parsers by name (`--reasoning-parser`).

The chat route's use:
    parser = get_reasoning_parser(name)
    reasoning, content = parser.parse(text)                     # whole output
    s = parser.stream(); s.feed(delta) / s.finish() -> (reasoning_delta, content_delta)
"""

from __future__ import annotations

import importlib

from sglang.parsers.reasoning.base import ReasoningParser, StreamingReasoningParser

REASONING_PARSERS = {
    "deepseek-r1": ("sglang.parsers.reasoning.deepseek_r1", "DeepSeekR1ReasoningParser"),
    "qwen3": ("sglang.parsers.reasoning.qwen3", "Qwen3ReasoningParser"),
    "qwen3-thinking": ("sglang.parsers.reasoning.qwen3", "Qwen3ThinkingReasoningParser"),
}

__all__ = [
    "REASONING_PARSERS",
    "ReasoningParser",
    "StreamingReasoningParser",
    "detect_reasoning_parser",
    "get_reasoning_parser",
]


def get_reasoning_parser(name: str) -> ReasoningParser:
    """The parser of a `--reasoning-parser` name; ValueError naming the choices."""
    if name not in REASONING_PARSERS:
        choices = ", ".join(sorted(REASONING_PARSERS))
        raise ValueError(f"unknown reasoning parser {name!r}; choose one of {choices}")
    module, cls = REASONING_PARSERS[name]
    return getattr(importlib.import_module(module), cls)()


def detect_reasoning_parser(chat_template: str | None, generation_prompt: str = "") -> str | None:
    """`--reasoning-parser auto`: the parser a chat template calls for, None if it shows no
    `<think>`. A template whose generation prompt ends inside an opened `<think>` makes the
    model start mid-thought (deepseek-r1); otherwise the `<think>` block is optional (qwen3).

    generation_prompt: the template rendered for one user message with the generation prompt.
    """
    if not chat_template or "<think>" not in chat_template:
        return None
    if generation_prompt.rstrip().endswith("<think>"):
        return "deepseek-r1"
    return "qwen3"
