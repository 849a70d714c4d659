"""Tool-call parsers by format name, auto-detection from a chat template, and the generation
constraint for `tool_choice` "required" or a named function.

The chat route's use:
    parser = get_tool_parser(name, tools=req.tools)   # name from --tool-call-parser
    parser.parse(text) -> ParseResult(content, tool_calls)        # whole output
    s = parser.stream(); s.feed(delta) / s.finish() -> [Delta]    # streamed output
    constraint_for_tool_choice(name, req.tools, req.tool_choice) -> {"json_schema"|"ebnf": ...}
"""

from __future__ import annotations

import importlib
from typing import Any

from sglang.parsers.tool.base import StreamingToolParser, ToolParser
from sglang.parsers.tool.constraints import constraint_for_tool_choice
from sglang.parsers.tool.records import (
    ContentDelta,
    Delta,
    ParseResult,
    ToolCall,
    ToolCallDelta,
    openai_delta,
)

TOOL_PARSERS = {
    "llama3": ("sglang.parsers.tool.llama3", "Llama3ToolParser"),
    "hermes": ("sglang.parsers.tool.hermes", "HermesToolParser"),
    "mistral": ("sglang.parsers.tool.mistral", "MistralToolParser"),
}
ALIASES = {"llama": "llama3", "qwen": "hermes", "qwen25": "hermes", "qwen3": "hermes"}

__all__ = [
    "ContentDelta",
    "Delta",
    "ParseResult",
    "StreamingToolParser",
    "TOOL_PARSERS",
    "ToolCall",
    "ToolCallDelta",
    "ToolParser",
    "constraint_for_tool_choice",
    "detect_tool_parser",
    "get_tool_parser",
    "openai_delta",
    "tool_parser_class",
]


def tool_parser_class(name: str) -> type[ToolParser]:
    """The parser class of a format name (or alias); ValueError naming the choices."""
    key = ALIASES.get(name, name)
    if key not in TOOL_PARSERS:
        choices = ", ".join(sorted(TOOL_PARSERS))
        raise ValueError(f"unknown tool-call parser {name!r}; choose one of {choices}")
    module, cls = TOOL_PARSERS[key]
    return getattr(importlib.import_module(module), cls)


def get_tool_parser(name: str, tools: list[dict] | None = None, **kw: Any) -> ToolParser:
    """A parser for one request; calls to names not among `tools` are not calls."""
    return tool_parser_class(name)(tools, **kw)


def detect_tool_parser(chat_template: str | None) -> str | None:
    """The format a chat template teaches, from its markers; None when it shows none.

    `<tool_call>` -> hermes (Qwen2.5/Qwen3, Hermes; checked first: Hermes-3 is a Llama),
    `[TOOL_CALLS]` -> mistral, `<|python_tag|>`, or a Llama 3 header template that speaks of
    the "ipython" role or of "parameters" -> llama3."""
    if not chat_template:
        return None
    if "<tool_call>" in chat_template:
        return "hermes"
    if "[TOOL_CALLS]" in chat_template:
        return "mistral"
    if "<|python_tag|>" in chat_template:
        return "llama3"
    if "<|start_header_id|>" in chat_template and (
        "ipython" in chat_template or '"parameters"' in chat_template
    ):
        return "llama3"
    return None
