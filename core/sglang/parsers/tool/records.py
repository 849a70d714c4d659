"""What tool-call parsers produce: whole-output results (content and calls) and streamed deltas,
in OpenAI's shapes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments_json: str
    id: str

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_json},
        }


@dataclass(frozen=True)
class ParseResult:
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass(frozen=True)
class ContentDelta:
    text: str

    def to_openai(self) -> dict[str, Any]:
        return {"content": self.text}


@dataclass(frozen=True)
class ToolCallDelta:
    """One piece of call `index`: the first carries id and name, later ones only arguments."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        call: dict[str, Any] = {"index": self.index}
        function: dict[str, Any] = {"arguments": self.arguments}
        if self.id is not None:
            call.update(id=self.id, type="function")
            function = {"name": self.name, "arguments": self.arguments}
        call["function"] = function
        return {"tool_calls": [call]}


Delta = ContentDelta | ToolCallDelta


def openai_delta(deltas: list[Delta]) -> dict[str, Any] | None:
    """The `delta` of one chat.completion.chunk choice for `deltas`; None when empty."""
    content = "".join(d.text for d in deltas if isinstance(d, ContentDelta))
    calls = [d.to_openai()["tool_calls"][0] for d in deltas if isinstance(d, ToolCallDelta)]
    out: dict[str, Any] = {}
    if content:
        out["content"] = content
    if calls:
        out["tool_calls"] = calls
    return out or None


def openai_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_names(tools: list[dict] | None) -> frozenset[str] | None:
    """Names of OpenAI-style tools ({"type": "function", "function": {"name": ...}})."""
    if tools is None:
        return None
    return frozenset(t.get("function", t).get("name") for t in tools)
