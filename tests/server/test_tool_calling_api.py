"""Tool calling and reasoning separation through the real server and the `openai` client, in
the three tool-call formats (Qwen/Hermes `<tool_call>`, Llama 3 JSON, Mistral `[TOOL_CALLS]`),
on a tiny random model (tool_chat_models.py) whose outputs the requests' constraints decide.

- tool_choice "required" and a named function: every call's arguments parse and validate with
  `jsonschema` against its tool's parameters; finish_reason "tool_calls"; streamed deltas
  have OpenAI's shape (index, id, type and name first, then argument pieces) and reassemble to
  the non-streamed message.
- "auto": calls in the output (forced here with a regex) are parsed out of the content;
  "none": tools are not offered to the template and nothing is parsed; tools, assistant
  tool_calls and tool messages reach the chat template (the prompt is the template's).
- Bad tools / tool_choice: 400 with an OpenAI error body naming the parameter.
- --reasoning-parser (qwen3 given; deepseek-r1 auto-detected from a template that opens
  <think>): reasoning_content split from content, streamed too, separate_reasoning and
  stream_reasoning honoured; a constrained tool call is never taken for reasoning.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import openai
import pytest
from server_process import ServerProcess
from tool_chat_models import render, save_tiny_chat_model

FORMATS = ("hermes", "llama3", "mistral")
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 12},
                "unit": {"enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
BOOKING = {
    "type": "function",
    "function": {
        "name": "book_table",
        "parameters": {
            "type": "object",
            "properties": {
                "guests": {"type": "integer", "minimum": 1, "maximum": 12},
                "vegetarian": {"type": "boolean"},
                "tags": {
                    "type": "array",
                    "items": {"enum": ["window", "quiet"]},
                    "maxItems": 2,
                },
            },
            "required": ["guests", "vegetarian"],
        },
    },
}
TOOLS = [WEATHER, BOOKING]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "user", "content": "What is the weather in Paris, and book a table for two."}]
EOS = 2  # <|im_end|>, SmolLM2's end of turn and the tiny model's EOS
WORDS = r"[a-z]{1,8}( [a-z]{1,8}){0,3}"
CALL_ARGS = r'\{"city": "[A-Z][a-z]{1,8}", "unit": "celsius"\}'
# an output in each format that the "auto" tests force with a regex
AUTO_REGEX = {
    "hermes": r"Sure\.\n<tool_call>\n\{\"name\": \"get_weather\", \"arguments\": "
    + CALL_ARGS
    + r"\}\n</tool_call>",
    # the llama3 server separates DeepSeek-R1 reasoning: close it first
    "llama3": r"ok</think>\n\n\{\"name\": \"get_weather\", \"parameters\": " + CALL_ARGS + r"\}",
    "mistral": r"\[TOOL_CALLS\] \[\{\"name\": \"get_weather\", \"arguments\": "
    + CALL_ARGS
    + r"\}\]",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    return save_tiny_chat_model(str(tmp_path_factory.mktemp("tool_model")), tokenizer)


@pytest.fixture(scope="module")
def servers(model_dir):
    """One server per format, started together: hermes (detected) with --reasoning-parser
    qwen3, llama3 (detected) with --reasoning-parser auto, mistral given by flag."""
    common = ("--model-path", model_dir, "--max-total-tokens", "8192",
              "--max-running-requests", "16", "--log-level", "info")  # fmt: skip
    flags = {
        "hermes": ("--reasoning-parser", "qwen3"),
        "llama3": ("--reasoning-parser", "auto"),
        "mistral": ("--tool-call-parser", "mistral"),
    }

    def start(name: str) -> ServerProcess:
        template = f"{model_dir}/{name}.jinja"
        return ServerProcess(*common, "--chat-template", template, *flags[name])

    with ThreadPoolExecutor(len(FORMATS)) as pool:
        futures = {name: pool.submit(start, name) for name in FORMATS}
    started = {name: f.result() for name, f in futures.items() if f.exception() is None}
    try:
        for f in futures.values():
            f.result()  # raises the first failure to start
        yield started
    finally:
        for s in started.values():  # all shut down together, then waited for
            s.proc.terminate()
        for s in started.values():
            s.stop()


@pytest.fixture(scope="module")
def clients(servers):
    return {
        name: openai.OpenAI(base_url=s.base_url + "/v1", api_key="none", max_retries=0)
        for name, s in servers.items()
    }


def chat(client, **kw):
    kw = {"messages": ASK, "max_tokens": 120, **kw}
    return client.chat.completions.create(model="default", temperature=0, **kw)


def streamed(client, **kw) -> dict:
    """A streamed chat reassembled; checks OpenAI's tool-call delta shape on the way."""
    content = reasoning = ""
    calls: dict[int, dict] = {}
    reason, kinds = None, []
    for chunk in chat(client, stream=True, **kw):
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = choice.delta
        r = getattr(delta, "reasoning_content", None)
        if r:
            reasoning += r
            kinds.append("reasoning")
        if delta.content:
            content += delta.content
            kinds.append("content")
        for tc in delta.tool_calls or []:
            kinds.append("tool_calls")
            if tc.index not in calls:
                assert tc.id and tc.type == "function" and tc.function.name, tc
                calls[tc.index] = {
                    "id": tc.id,
                    "name": tc.function.name,
                    "arguments": tc.function.arguments or "",
                }
            else:
                assert tc.id is None and tc.function.name is None, tc
                calls[tc.index]["arguments"] += tc.function.arguments or ""
        if choice.finish_reason is not None:
            reason = choice.finish_reason
    assert sorted(calls) == list(range(len(calls)))
    return {
        "content": content,
        "reasoning": reasoning,
        "calls": [calls[i] for i in sorted(calls)],
        "finish_reason": reason,
        "kinds": kinds,
    }


def calls_of(message) -> list[dict]:
    return [
        {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
        for c in message.tool_calls or []
    ]


def check_calls(calls: list[dict], names: set[str], fmt: str) -> None:
    assert calls
    for call in calls:
        assert call["name"] in names
        jsonschema.validate(json.loads(call["arguments"]), SCHEMAS[call["name"]])
        if fmt == "mistral":  # Mistral's templates need 9 alphanumeric characters
            assert re.fullmatch(r"[A-Za-z0-9]{9}", call["id"]), call["id"]
        else:
            assert call["id"].startswith("call_")


def same_calls(a: list[dict], b: list[dict]) -> bool:
    def strip(calls):
        return [(c["name"], json.loads(c["arguments"])) for c in calls]

    return strip(a) == strip(b)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("parallel", [True, False])
def test_required_tool_choice(clients, fmt, parallel):
    # a random model may go on calling while the grammar allows more calls: EOS wins wherever
    # the grammar allows it, so the output is one call (the grammar's shortest way to end)
    eos_first = {str(EOS): 100}
    kw = dict(tools=TOOLS, tool_choice="required", parallel_tool_calls=parallel)
    kw["logit_bias"] = eos_first
    r = chat(clients[fmt], **kw)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert choice.message.content is None
    assert getattr(choice.message, "reasoning_content", None) is None  # never reasoning
    calls = calls_of(choice.message)
    check_calls(calls, set(SCHEMAS), fmt)
    if not parallel:
        assert len(calls) == 1
    s = streamed(clients[fmt], **kw)
    assert s["finish_reason"] == "tool_calls"
    assert s["content"] == "" and s["reasoning"] == ""
    check_calls(s["calls"], set(SCHEMAS), fmt)
    assert same_calls(s["calls"], calls)


@pytest.mark.parametrize("fmt", FORMATS)
def test_named_tool_choice(clients, fmt):
    kw = dict(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "book_table"}})
    choice = chat(clients[fmt], **kw).choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = calls_of(choice.message)
    assert [c["name"] for c in calls] == ["book_table"]
    check_calls(calls, {"book_table"}, fmt)
    s = streamed(clients[fmt], **kw)
    assert s["finish_reason"] == "tool_calls" and s["content"] == ""
    assert [c["name"] for c in s["calls"]] == ["book_table"]
    check_calls(s["calls"], {"book_table"}, fmt)
    assert same_calls(s["calls"], calls)


@pytest.mark.parametrize("fmt", FORMATS)
def test_auto_parses_calls_out_of_the_text(clients, fmt):
    kw = dict(tools=TOOLS, extra_body={"regex": AUTO_REGEX[fmt]})
    choice = chat(clients[fmt], **kw).choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = calls_of(choice.message)
    assert [c["name"] for c in calls] == ["get_weather"]
    check_calls(calls, {"get_weather"}, fmt)
    assert choice.message.content == ("Sure." if fmt == "hermes" else None)
    if fmt == "llama3":
        assert choice.message.reasoning_content == "ok"
    s = streamed(clients[fmt], **kw)
    assert s["finish_reason"] == "tool_calls"
    assert s["content"] == (choice.message.content or "")
    assert same_calls(s["calls"], calls)


def test_auto_without_a_call_is_content(clients):
    choice = chat(clients["hermes"], tools=TOOLS, extra_body={"regex": "(yes|no)"}).choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content in ("yes", "no") and not choice.message.tool_calls


def test_parallel_tool_calls_false_keeps_the_first_call(clients):
    two = AUTO_REGEX["hermes"] + r"\n<tool_call>\n\{\"name\": \"book_table\", \"arguments\": "
    two += r"\{\"guests\": 2, \"vegetarian\": true\}\}\n</tool_call>"
    kw = dict(tools=TOOLS, extra_body={"regex": two})
    both = calls_of(chat(clients["hermes"], **kw).choices[0].message)
    assert [c["name"] for c in both] == ["get_weather", "book_table"]
    one = chat(clients["hermes"], parallel_tool_calls=False, **kw).choices[0]
    assert [c["name"] for c in calls_of(one.message)] == ["get_weather"]
    s = streamed(clients["hermes"], parallel_tool_calls=False, **kw)
    assert [c["name"] for c in s["calls"]] == ["get_weather"]


def test_tool_choice_none_offers_no_tools(clients, tokenizer):
    kw = dict(tools=TOOLS, tool_choice="none", extra_body={"regex": AUTO_REGEX["hermes"]})
    r = chat(clients["hermes"], **kw)
    assert r.usage.prompt_tokens == len(render(tokenizer, "hermes", ASK))
    choice = r.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert re.fullmatch(AUTO_REGEX["hermes"], choice.message.content)


CONVERSATION = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "abcDEF123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "abcDEF123", "content": '{"temperature": 21}'},
    {"role": "user", "content": "And a table?"},
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_tools_and_tool_messages_reach_the_template(clients, tokenizer, fmt):
    r = chat(clients[fmt], messages=CONVERSATION, tools=TOOLS, max_tokens=1)
    expected = json.loads(json.dumps(CONVERSATION))
    expected[1]["content"] = ""
    expected[1]["tool_calls"][0]["function"]["arguments"] = {"city": "Paris", "unit": "c"}
    ids = render(tokenizer, fmt, expected, tools=TOOLS)
    assert r.usage.prompt_tokens == len(ids)
    assert len(ids) > len(render(tokenizer, fmt, expected)) + 50  # the tools are in it


def bad_request(client, **kw) -> dict:
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, **kw)
    body = e.value.response.json()
    assert e.value.status_code == 400 and body["object"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    return body["error"]


BAD_SCHEMA = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "x"}}}},
}


@pytest.mark.parametrize(
    "kw, param, words",
    [
        (dict(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}}),
         "tool_choice", "'nope', which is not among the tools"),
        (dict(tools=[BAD_SCHEMA]), "tools", "tools[0].function.parameters: invalid json_schema"),
        (dict(tools=[{"type": "function", "function": {"description": "no name"}}]),
         "tools", "tools[0].function.name"),
        (dict(tool_choice="required"), "tool_choice", "only allowed when tools are specified"),
        (dict(tools=TOOLS, tool_choice="sometimes"), "tool_choice", "tool_choice must be"),
        (dict(tools=TOOLS, tool_choice="required", response_format={"type": "json_object"}),
         "tool_choice", "cannot be combined with response_format"),
        (dict(tools=TOOLS, tool_choice="required", extra_body={"regex": "a"}),
         "tool_choice", "cannot be combined with regex"),
    ],
)  # fmt: skip
def test_bad_tools_are_400(clients, kw, param, words):
    error = bad_request(clients["hermes"], **kw)
    assert error["param"] == param and words in error["message"], error


def test_template_errors_are_400(clients):
    error = bad_request(clients["mistral"], messages=[{"role": "system", "content": "x"}] + ASK)
    assert "Only user, assistant and tool roles" in error["message"]


def test_parsers_are_logged(servers):
    assert (
        "tool-call parser: hermes (detected from the chat template)" in servers["hermes"].output()
    )
    log = servers["llama3"].output()
    assert "tool-call parser: llama3 (detected from the chat template)" in log
    assert "reasoning parser: deepseek-r1 (detected from the chat template)" in log
    assert "tool-call parser: mistral (--tool-call-parser)" in servers["mistral"].output()


# --- reasoning -------------------------------------------------------------------------------
QWEN_THINKING = r"<think>\n" + WORDS + r"\n</think>\n\n(yes|no)"
R1_THINKING = WORDS + r"\n</think>\n\n(yes|no)"  # the template opened <think>


@pytest.mark.parametrize("fmt, regex", [("hermes", QWEN_THINKING), ("llama3", R1_THINKING)])
def test_reasoning_content(clients, fmt, regex):
    kw = dict(extra_body={"regex": regex})
    message = chat(clients[fmt], **kw).choices[0].message
    assert re.fullmatch(WORDS, message.reasoning_content), message
    assert message.content in ("yes", "no")
    raw = chat(clients[fmt], extra_body={"regex": regex, "separate_reasoning": False})
    raw = raw.choices[0].message
    assert re.fullmatch(regex, raw.content) and getattr(raw, "reasoning_content", None) is None
    assert message.reasoning_content in raw.content and raw.content.endswith(message.content)
    s = streamed(clients[fmt], **kw)
    assert (s["reasoning"], s["content"]) == (message.reasoning_content, message.content)
    kinds = s["kinds"]
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    assert kinds.count("reasoning") > 1  # streamed as it came
    held = streamed(clients[fmt], extra_body={"regex": regex, "stream_reasoning": False})
    assert held["kinds"].count("reasoning") == 1
    assert (held["reasoning"], held["content"]) == (message.reasoning_content, message.content)


def test_unfinished_thinking_is_all_reasoning(clients):
    """DeepSeek-R1's output starts mid-thought: without </think> it is all reasoning."""
    raw = chat(clients["llama3"], max_tokens=8, extra_body={"separate_reasoning": False})
    message = chat(clients["llama3"], max_tokens=8).choices[0].message
    assert "</think>" not in raw.choices[0].message.content
    assert message.reasoning_content == raw.choices[0].message.content.strip()
    assert message.content == ""


def test_no_reasoning_parser_no_reasoning_content(clients):
    message = chat(clients["mistral"], extra_body={"regex": QWEN_THINKING}).choices[0].message
    assert message.content.startswith("<think>")
    assert getattr(message, "reasoning_content", None) is None
