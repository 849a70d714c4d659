"""ChoiceOutput, the chat route's reasoning -> tool-call pipeline, on recorded-style outputs:
streamed under random splits it adds up to the non-streamed message; stream_reasoning off,
parallel_tool_calls off, finish reasons; and plan_tools' decisions (no server needed)."""

from __future__ import annotations

import json
import random

import pytest
from sglang.parsers.reasoning import get_reasoning_parser
from sglang.parsers.tool import get_tool_parser
from sglang.server.chat_tools import ChoiceOutput, ToolPlan, plan_tools
from sglang.server.errors import APIError

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
QWEN3 = (
    "<think>\nThe user wants the weather in Paris and Rome.\n</think>\n\n"
    "Checking both.\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n'
    '{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>'
)


def plan(parser="hermes", parallel=True) -> ToolPlan:
    return ToolPlan(
        tools=[TOOL],
        parser=get_tool_parser(parser, tools=[TOOL]),
        single_call=not parallel,
    )


def stream_all(out: ChoiceOutput, text: str, rng: random.Random) -> tuple[dict, list[dict]]:
    """Feed text in random pieces; the reassembled message and the deltas."""
    deltas, i = [], 0
    while i < len(text):
        j = min(len(text), i + rng.randint(1, 7))
        deltas.append(out.feed(text[i:j]))
        i = j
    deltas.append(out.finish())
    deltas = [d for d in deltas if d]
    msg = {"content": "", "reasoning_content": "", "tool_calls": {}}
    for d in deltas:
        msg["content"] += d.get("content", "")
        msg["reasoning_content"] += d.get("reasoning_content", "")
        for c in d.get("tool_calls", []):
            calls = msg["tool_calls"]
            if "id" in c:
                assert c["index"] not in calls and c["type"] == "function"
                calls[c["index"]] = {"id": c["id"], "type": "function", "function": c["function"]}
            else:
                assert set(c) == {"index", "function"} and set(c["function"]) == {"arguments"}
                calls[c["index"]]["function"]["arguments"] += c["function"]["arguments"]
    return msg, deltas


@pytest.mark.parametrize("seed", range(20))
def test_streamed_adds_up_to_the_message(seed):
    reasoning = get_reasoning_parser("qwen3")
    whole = ChoiceOutput(reasoning, plan()).message(QWEN3)
    assert whole["reasoning_content"] == "The user wants the weather in Paris and Rome."
    assert whole["content"] == "Checking both."
    assert [json.loads(c["function"]["arguments"]) for c in whole["tool_calls"]] == [
        {"city": "Paris"},
        {"city": "Rome"},
    ]
    out = ChoiceOutput(reasoning, plan())
    msg, deltas = stream_all(out, QWEN3, random.Random(seed))
    assert msg["content"] == whole["content"]
    assert msg["reasoning_content"] == whole["reasoning_content"]
    got = [(c["function"]["name"], c["function"]["arguments"]) for c in msg["tool_calls"].values()]
    want = [(c["function"]["name"], c["function"]["arguments"]) for c in whole["tool_calls"]]
    assert got == want
    kinds = [k for d in deltas for k in d]
    last_reasoning = max(i for i, k in enumerate(kinds) if k == "reasoning_content")
    assert last_reasoning < kinds.index("content") < kinds.index("tool_calls")
    assert out.finish_reason("stop") == "tool_calls" and out.finish_reason("length") == "length"


def test_stream_reasoning_off_sends_reasoning_once():
    out = ChoiceOutput(get_reasoning_parser("qwen3"), plan(), stream_reasoning=False)
    _, deltas = stream_all(out, QWEN3, random.Random(0))
    pieces = [d["reasoning_content"] for d in deltas if "reasoning_content" in d]
    assert pieces == ["The user wants the weather in Paris and Rome."]


def test_parallel_tool_calls_off_keeps_the_first():
    msg = ChoiceOutput(None, plan(parallel=False)).message(QWEN3.split("</think>")[1])
    assert [json.loads(c["function"]["arguments"]) for c in msg["tool_calls"]] == [
        {"city": "Paris"}
    ]


def test_constrained_answer_is_not_reasoning_for_r1():
    call = '{"name": "get_weather", "parameters": {"city": "Paris"}}'
    r1 = get_reasoning_parser("deepseek-r1")
    free = ChoiceOutput(r1, plan("llama3")).message(call)
    assert free["reasoning_content"] == call and "tool_calls" not in free
    forced = ChoiceOutput(r1, plan("llama3"), answer_constrained=True).message(call)
    assert forced["reasoning_content"] is None and forced["content"] is None
    assert forced["tool_calls"][0]["function"]["name"] == "get_weather"


def test_no_parsers_pass_text_through():
    out = ChoiceOutput()
    assert out.message("<think>x</think> <tool_call>") == {
        "role": "assistant",
        "content": "<think>x</think> <tool_call>",
    }
    assert out.finish_reason("stop") == "stop"


def test_plan_tools():
    none = plan_tools([TOOL], "none", True, "hermes", "xgrammar")
    assert none.tools is None and none.parser is None and none.constraint is None
    auto = plan_tools([TOOL], None, True, "hermes", "xgrammar")
    assert auto.tools == [TOOL] and auto.parser is not None and auto.constraint is None
    required = plan_tools([TOOL], "required", False, "llama3", "xgrammar")
    assert "json_schema" in required.constraint and required.single_call
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert "ebnf" in plan_tools([TOOL], named, True, "hermes", "xgrammar").constraint
    unparsed = plan_tools([TOOL], "auto", True, None, "xgrammar")
    assert unparsed.tools == [TOOL] and unparsed.parser is None
    with pytest.raises(APIError, match="--tool-call-parser"):
        plan_tools([TOOL], "required", True, None, "xgrammar")
    with pytest.raises(APIError, match="only allowed when tools"):
        plan_tools(None, "auto", True, "hermes", "xgrammar")
    assert plan_tools(None, "none", True, "hermes", "xgrammar") == ToolPlan()


def test_reasoning_parser_detection():
    from sglang.parsers.reasoning import detect_reasoning_parser

    assert detect_reasoning_parser(None) is None
    assert detect_reasoning_parser("{{ messages }}", "<|im_start|>assistant\n") is None
    qwen3 = "{%- if enable_thinking is false %}<think>\n\n</think>\n\n{%- endif %}"
    assert detect_reasoning_parser(qwen3, "<|im_start|>assistant\n") == "qwen3"
    r1 = "{{ '<｜Assistant｜><think>\n' }}"
    assert detect_reasoning_parser(r1, "<｜Assistant｜><think>\n") == "deepseek-r1"
