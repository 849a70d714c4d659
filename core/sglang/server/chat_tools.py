"""Tool calling and reasoning separation on /v1/chat/completions.

Request side (`plan_tools`): checks `tools` and `tool_choice` (a 400 naming the problem),
decides whether the tools reach the chat template, which parser reads the output, and which
constraint forces a call:
- tool_choice "none": the tools are not offered (not given to the template) and the output
  is not parsed, as SGLang does;
- "auto" (the default when tools are given): offered, and the output parsed for calls;
- "required" or a named function: offered, parsed, and generation constrained to a call with
  valid arguments (`constraint_for_tool_choice`, the grammar path of response_format).
Each tool's `parameters` is checked as a JSON schema by the server's grammar backend, so a
schema the server cannot enforce is refused whatever the tool_choice.

Response side (`ChoiceOutput`): one choice's text goes through the reasoning parser first
(`reasoning_content`), then its content through the tool-call parser (`tool_calls`), as text
arrives; the non-streamed message runs the same machine on the whole text, so streamed deltas
always add up to the non-streamed message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sglang.constrained import GrammarError
from sglang.constrained.registry import validate_spec
from sglang.parsers.reasoning import ReasoningParser
from sglang.parsers.tool import (
    ContentDelta,
    Delta,
    ToolCallDelta,
    ToolParser,
    constraint_for_tool_choice,
    get_tool_parser,
)
from sglang.server.errors import APIError

CHOICES = ("auto", "none", "required")


@dataclass(frozen=True)
class ToolPlan:
    tools: list[dict] | None = None  # given to the chat template; None: no tools offered
    parser: ToolParser | None = None  # reads calls out of the output; None: no parsing
    constraint: dict[str, str] | None = None  # {"json_schema"|"ebnf": ...} forcing a call
    single_call: bool = False  # parallel_tool_calls false: only the first call is kept


def check_tools(tools: list[Any], grammar_backend: str) -> None:
    """OpenAI's tool shape, and parameters that are a JSON schema the backend accepts."""
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise APIError(400, f'{where} must be {{"type": "function", "function": ...}}', "tools")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise APIError(400, f"{where}.function must be an object", "tools")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise APIError(400, f"{where}.function.name must be a non-empty string", "tools")
        params = function.get("parameters")
        if params is None:
            continue
        if not isinstance(params, dict):
            msg = f"{where}.function.parameters must be a JSON schema object"
            raise APIError(400, msg, "tools")
        try:
            validate_spec(grammar_backend, "json_schema", json.dumps(params))
        except GrammarError as e:
            raise APIError(400, f"{where}.function.parameters: {e}", "tools") from None
        except (TypeError, ValueError) as e:
            raise APIError(400, f"{where}.function.parameters: {e}", "tools") from None


def check_tool_choice(choice: Any) -> None:
    if choice is None or choice in CHOICES:
        return
    if isinstance(choice, dict):
        function = choice.get("function")
        if (
            choice.get("type", "function") == "function"
            and isinstance(function, dict)
            and isinstance(function.get("name"), str)
        ):
            return
    raise APIError(
        400,
        "tool_choice must be auto, none, required or "
        f'{{"type": "function", "function": {{"name": ...}}}}, not {json.dumps(choice)}',
        "tool_choice",
    )


def plan_tools(
    tools: list[Any] | None,
    tool_choice: Any,
    parallel_tool_calls: bool,
    parser_name: str | None,
    grammar_backend: str,
) -> ToolPlan:
    """What the request's tools mean for this server (parser_name: its tool-call format)."""
    check_tool_choice(tool_choice)
    if tools:
        check_tools(tools, grammar_backend)
    else:
        if tool_choice not in (None, "none"):
            raise APIError(
                400, "tool_choice is only allowed when tools are specified", "tool_choice"
            )
        return ToolPlan()
    choice = "auto" if tool_choice is None else tool_choice
    if choice == "none":
        return ToolPlan()
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        if name not in {t["function"]["name"] for t in tools}:
            raise APIError(
                400,
                f"tool_choice names the function {name!r}, which is not among the tools",
                "tool_choice",
            )
    if parser_name is None:
        if choice != "auto":
            raise APIError(
                400,
                "tool_choice required or a named function needs a tool-call format: the chat "
                "template shows none this server knows; start it with --tool-call-parser",
                "tool_choice",
            )
        return ToolPlan(tools=tools)
    try:
        constraint = constraint_for_tool_choice(parser_name, tools, choice, parallel_tool_calls)
    except ValueError as e:
        raise APIError(400, str(e), "tools") from None
    return ToolPlan(
        tools=tools,
        parser=get_tool_parser(parser_name, tools=tools),
        constraint=constraint,
        single_call=not parallel_tool_calls,
    )


def template_tool_calls(calls: Any, i: int) -> list[dict]:
    """An assistant message's tool_calls for the chat template: arguments given as a JSON
    string become an object (templates write them with `tojson`), as SGLang does."""
    if not isinstance(calls, list):
        raise APIError(400, f"messages[{i}].tool_calls must be a list", "messages")
    out = []
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise APIError(
                400, f"messages[{i}].tool_calls[{j}] must have a function with a name", "messages"
            )
        args = function.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                pass  # kept as written; the template shows the string
        out.append({**call, "type": "function", "function": {**function, "arguments": args}})
    return out


# --- output ----------------------------------------------------------------------------------
class ChoiceOutput:
    """One choice's output as OpenAI fields: reasoning_content, content, tool_calls.

    reasoning: the server's reasoning parser (None: no separation); answer_constrained: the
    route constrained the output to an answer (a tool call or response_format), so it is
    reasoning only inside an explicit <think> block, even for formats whose output starts
    mid-thought; stream_reasoning false holds reasoning back until it is complete."""

    def __init__(
        self,
        reasoning: ReasoningParser | None = None,
        tools: ToolPlan | None = None,
        answer_constrained: bool = False,
        stream_reasoning: bool = True,
    ) -> None:
        self.reasoning = None
        if reasoning is not None:
            self.reasoning = reasoning.stream(False if answer_constrained else None)
        parser = tools.parser if tools is not None else None
        self.tools = parser.stream() if parser is not None else None
        self.single_call = bool(tools and tools.single_call)
        self.stream_reasoning = stream_reasoning
        self.held_reasoning = ""
        self.n_calls = 0

    @property
    def has_tool_calls(self) -> bool:
        return self.n_calls > 0

    def feed(self, text: str) -> dict[str, Any]:
        """The delta fields for newly generated text ({} when nothing is certain yet)."""
        if self.reasoning is None:
            return self._delta("", self._content(text, final=False))
        reasoning, content = self.reasoning.feed(text)
        return self._delta(reasoning, self._content(content, final=False))

    def finish(self) -> dict[str, Any]:
        """The delta fields of what was held back, once the output is complete."""
        reasoning = ""
        deltas: list[Delta] = []
        if self.reasoning is not None:
            reasoning, content = self.reasoning.finish()
            deltas = self._content(content, final=False)
        deltas += self._content("", final=True)
        return self._delta(reasoning, deltas, final=True)

    def message(self, text: str) -> dict[str, Any]:
        """The whole output as a chat.completion message."""
        a, b = self.feed(text), self.finish()
        content = a.get("content", "") + b.get("content", "")
        msg: dict[str, Any] = {"role": "assistant", "content": content}
        if self.reasoning is not None:
            reasoning = a.get("reasoning_content", "") + b.get("reasoning_content", "")
            msg["reasoning_content"] = reasoning or None
        calls: dict[int, dict] = {}
        for part in a.get("tool_calls", []) + b.get("tool_calls", []):
            if part["index"] in calls:
                calls[part["index"]]["function"]["arguments"] += part["function"]["arguments"]
            else:
                calls[part["index"]] = {
                    "id": part["id"],
                    "type": "function",
                    "function": dict(part["function"]),
                }
        if calls:
            msg["tool_calls"] = list(calls.values())
            msg["content"] = content or None
        return msg

    def finish_reason(self, reason: str | None) -> str | None:
        """OpenAI's: a generation that stopped on its own after calls ends with tool_calls."""
        return "tool_calls" if reason == "stop" and self.has_tool_calls else reason

    # --- internals ------------------------------------------------------------------------
    def _content(self, text: str, final: bool) -> list[Delta]:
        if self.tools is None:
            return [ContentDelta(text)] if text else []
        deltas = self.tools.feed(text) if text else []
        if final:
            deltas += self.tools.finish()
        if self.single_call:
            deltas = [d for d in deltas if not isinstance(d, ToolCallDelta) or d.index == 0]
        return deltas

    def _delta(self, reasoning: str, deltas: list[Delta], final: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not self.stream_reasoning:
            self.held_reasoning += reasoning
            reasoning = ""
            if self.held_reasoning and (final or deltas or self.reasoning.state == "content"):
                reasoning, self.held_reasoning = self.held_reasoning, ""
        if reasoning:
            out["reasoning_content"] = reasoning
        content = "".join(d.text for d in deltas if isinstance(d, ContentDelta))
        if content:
            out["content"] = content
        calls: list[dict] = []
        for d in deltas:
            if not isinstance(d, ToolCallDelta):
                continue
            if d.id is not None:
                self.n_calls = max(self.n_calls, d.index + 1)
            last = calls[-1] if calls else None
            if last is not None and d.id is None and last["index"] == d.index:
                last["function"]["arguments"] += d.arguments
            else:
                calls.append(d.to_openai()["tool_calls"][0])
        if calls:
            out["tool_calls"] = calls
        return out
