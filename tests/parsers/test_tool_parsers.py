"""Tool-call parsers on recorded outputs of each format, whole and streamed; tool_choice
constraints checked against the parser and the tools' schemas.

Recorded outputs, written as the models emit them (decoded with skip_special_tokens off, so
the marker special tokens and the end-of-turn token are in the text):
- Llama-3.1-8B-Instruct: Meta's "JSON based tool calling" prompt format (llama-models
  docs, the model's chat template): `{"name": ..., "parameters": {...}}`, after
  `<|python_tag|>` in the ipython environment, ending with `<|eom_id|>` / `<|eot_id|>`;
  Llama 3.2 separates several calls with `;`.
- Qwen2.5-7B-Instruct: Qwen's function-calling guide (its example answer to "What's the
  temperature in San Francisco now? How about tomorrow?") and the chat template's
  `<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>`; Hermes-2-Pro writes
  "arguments" first (its model card), Hermes-3 ends with `<|im_end|>`.
- Mistral-7B-Instruct-v0.3: its model card's function-calling example, `[TOOL_CALLS] [{...}]`;
  Mistral-Small-3.2 (tokenizer v11): `[TOOL_CALLS]name[ARGS]{...}` per call.
"""

from __future__ import annotations

import json
import random

import jsonschema
import pytest
from sglang.parsers.tool import (
    ContentDelta,
    ToolCallDelta,
    constraint_for_tool_choice,
    detect_tool_parser,
    get_tool_parser,
    openai_delta,
)

FORMATS = jsonschema.FormatChecker()


def validate(instance, schema, formats: bool = True):
    jsonschema.validate(instance, schema, format_checker=FORMATS if formats else None)


W_PARIS = {"location": "Paris, France", "format": "celsius"}
SF = "San Francisco, CA, USA"
QWEN_TWO_CALLS = (
    '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "' + SF + '"}}'
    '\n</tool_call>\n<tool_call>\n{"name": "get_temperature_date", "arguments": {"location": "'
    + SF
    + '", "date": "2024-09-30"}}\n</tool_call>'
)
TRICKY = {"query": 'café "best" {near} me\\n', "filters": {"open": True, "price": [1, 2]}}

# (parser, recorded output, expected content, expected [(name, arguments object)])
RECORDED = [
    (
        "llama3",
        '{"name": "get_current_weather", "parameters": {"location": "San Francisco, CA", '
        '"unit": "fahrenheit"}}<|eot_id|>',
        "",
        [("get_current_weather", {"location": "San Francisco, CA", "unit": "fahrenheit"})],
    ),
    (
        "llama3",
        '<|python_tag|>{"name": "get_current_weather", "parameters": {"location": "Paris, France"}}'
        "<|eom_id|>",
        "",
        [("get_current_weather", {"location": "Paris, France"})],
    ),
    (
        "llama3",
        '{"name": "get_current_weather", "parameters": {"location": "Paris"}}; '
        '{"name": "get_current_weather", "parameters": {"location": "London"}}',
        "",
        [
            ("get_current_weather", {"location": "Paris"}),
            ("get_current_weather", {"location": "London"}),
        ],
    ),
    (
        "llama3",
        "Let me search for that.<|python_tag|>"
        + json.dumps({"name": "search", "parameters": TRICKY}, ensure_ascii=False),
        "Let me search for that.",
        [("search", TRICKY)],
    ),
    ("llama3", "The capital of France is Paris.<|eot_id|>", "The capital of France is Paris.", []),
    (
        "hermes",
        QWEN_TWO_CALLS,
        "",
        [
            ("get_current_temperature", {"location": SF}),
            ("get_temperature_date", {"location": SF, "date": "2024-09-30"}),
        ],
    ),
    (
        "hermes",
        "I'll check the current weather for you.\n<tool_call>\n"
        '{"name": "get_current_weather", "arguments": {"location": "Paris, France", '
        '"format": "celsius"}}\n</tool_call><|im_end|>',
        "I'll check the current weather for you.",
        [("get_current_weather", W_PARIS)],
    ),
    (
        "hermes",
        '<tool_call>\n{"arguments": {"symbol": "TSLA"}, "name": "get_stock_fundamentals"}\n'
        "</tool_call>",
        "",
        [("get_stock_fundamentals", {"symbol": "TSLA"})],
    ),
    (
        "hermes",
        "<tool_call>\n" + json.dumps({"name": "search", "arguments": TRICKY}) + "\n</tool_call>",
        "",
        [("search", TRICKY)],
    ),
    (
        "hermes",
        "The temperature in Paris is 18 °C.\n\nAnything else?<|im_end|>",
        "The temperature in Paris is 18 °C.\n\nAnything else?",
        [],
    ),
    (
        "mistral",
        '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": {"location": "Paris, France", '
        '"format": "celsius"}}]</s>',
        "",
        [("get_current_weather", W_PARIS)],
    ),
    (
        "mistral",
        '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": {"location": "Paris, France", '
        '"format": "celsius"}}, {"name": "get_current_weather", "arguments": {"location": '
        '"London, UK", "format": "celsius"}}]',
        "",
        [
            ("get_current_weather", W_PARIS),
            ("get_current_weather", {"location": "London, UK", "format": "celsius"}),
        ],
    ),
    (
        "mistral",
        '[TOOL_CALLS]get_current_weather[ARGS]{"location": "Paris, France", "format": "celsius"}'
        "[TOOL_CALLS]search[ARGS]" + json.dumps(TRICKY) + "</s>",
        "",
        [("get_current_weather", W_PARIS), ("search", TRICKY)],
    ),
    ("mistral", '[TOOL_CALLS]add{"a": 3.5, "b": 4}', "", [("add", {"a": 3.5, "b": 4})]),
    ("mistral", "Sure.[TOOL_CALLS][ARGS]", "Sure.[TOOL_CALLS][ARGS]", []),
    ("mistral", "The weather in Paris is 18 °C.</s>", "The weather in Paris is 18 °C.", []),
]

EDGE = [
    # malformed JSON after the marker: content as written
    (
        "hermes",
        "<tool_call>\n{'name': 'f', 'arguments': {}}\n</tool_call>",
        "<tool_call>\n{'name': 'f', 'arguments': {}}\n</tool_call>",
        [],
    ),
    (
        "hermes",
        'Hi <tool_call>\n{"name": "f", "arguments": [1]}\n</tool_call>',
        'Hi <tool_call>\n{"name": "f", "arguments": [1]}\n</tool_call>',
        [],
    ),
    (
        "llama3",
        '<|python_tag|>brave_search.call(query="weather")',
        '<|python_tag|>brave_search.call(query="weather")',
        [],
    ),
    ("llama3", '{"answer": 42, "name": "x"}', '{"answer": 42, "name": "x"}', []),
    ("llama3", '{"name": "f", "parameters": {"a": 1}} Done.', "Done.", [("f", {"a": 1})]),
    ("mistral", "[TOOL_CALLS] not json", "[TOOL_CALLS] not json", []),
    ("mistral", "[1, 2, 3]", "[1, 2, 3]", []),
    ("mistral", '[{"a": 1}]', '[{"a": 1}]', []),
    # a later array element that is no call is dropped
    ("mistral", '[TOOL_CALLS] [{"name": "f", "arguments": {}}, {"x": 1}]', "", [("f", {})]),
    # a call without its closing tag, then text
    (
        "hermes",
        '<tool_call>\n{"name": "f", "arguments": {"a": "}"}}\nok',
        "ok",
        [("f", {"a": "}"})],
    ),
    # content between calls, whitespace around them dropped
    (
        "hermes",
        'A\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>\nB\n'
        '<tool_call>{"name": "g", "arguments": {"x": null}}</tool_call>\n',
        "AB",
        [("f", {}), ("g", {"x": None})],
    ),
    # a header cut by the end of the output: content
    ("hermes", '<tool_call>\n{"name": "get_w', '<tool_call>\n{"name": "get_w', []),
]


def chunkings(text: str):
    """Every split into deltas of sizes 1, 2, 3 and 7 (all alignments), and a random one."""
    for k in (1, 2, 3, 7):
        for first in range(1, k + 1):
            yield [text[:first]] + [text[i : i + k] for i in range(first, len(text), k)]
    rng = random.Random(len(text))
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, 12)))
    yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def streamed(parser, pieces):
    s = parser.stream()
    deltas = []
    for p in pieces:
        deltas += s.feed(p)
    deltas += s.finish()
    return deltas


def check_stream(parser, text):
    """Streaming over every chunking equals the whole parse; call deltas are well formed."""
    whole = parser.parse(text)
    for pieces in chunkings(text):
        deltas = streamed(parser, pieces)
        content = "".join(d.text for d in deltas if isinstance(d, ContentDelta))
        assert content == whole.content, pieces
        calls: dict[int, list] = {}
        for d in deltas:
            if isinstance(d, ToolCallDelta):
                if d.index not in calls:
                    assert d.id is not None and d.name is not None, "first delta names the call"
                    assert d.index == len(calls)
                    calls[d.index] = [d.name, d.arguments]
                else:
                    assert d.id is None and d.name is None
                    calls[d.index][1] += d.arguments
        got = [(n, a) for n, a in calls.values()]
        assert got == [(c.name, c.arguments_json) for c in whole.tool_calls], pieces
    return whole


def ids(cases):
    return [f"{c[0]}-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("case", RECORDED + EDGE, ids=ids(RECORDED + EDGE))
def test_whole_and_streamed(case):
    name, text, content, calls = case
    result = check_stream(get_tool_parser(name), text)
    assert result.content == content
    assert [(c.name, json.loads(c.arguments_json)) for c in result.tool_calls] == calls
    assert len({c.id for c in result.tool_calls}) == len(calls)


@pytest.mark.parametrize("name", ["llama3", "hermes", "mistral"])
def test_unknown_tool_name_is_content(name):
    text = {
        "llama3": '<|python_tag|>{"name": "rm_rf", "parameters": {}}',
        "hermes": '<tool_call>\n{"name": "rm_rf", "arguments": {}}\n</tool_call>',
        "mistral": '[TOOL_CALLS] [{"name": "rm_rf", "arguments": {}}]',
    }[name]
    parser = get_tool_parser(name, tools=[{"type": "function", "function": {"name": "f"}}])
    result = check_stream(parser, text)
    assert result.tool_calls == [] and result.content == text


def test_truncated_arguments_stay_a_call():
    """A committed call cut by max_tokens keeps its (cut) arguments, as OpenAI returns them."""
    text = '<tool_call>\n{"name": "f", "arguments": {"city": "Par'
    result = check_stream(get_tool_parser("hermes"), text)
    assert [(c.name, c.arguments_json) for c in result.tool_calls] == [("f", '{"city": "Par')]


def test_ids_and_openai_shapes():
    parser = get_tool_parser("mistral")
    result = parser.parse(RECORDED[11][1])
    assert all(len(c.id) == 9 and c.id.isalnum() for c in result.tool_calls)
    assert result.tool_calls[0].to_openai()["function"]["name"] == "get_current_weather"
    hermes = get_tool_parser("hermes", make_id=iter(["call_1", "call_2"]).__next__)
    deltas = streamed(hermes, ['Hi\n<tool_call>\n{"name": "f", "arguments": {"a"', ": 1}}"])
    assert openai_delta(deltas[:2]) == {
        "content": "Hi",
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": '{"a"'},
            },
        ],
    }
    assert openai_delta(deltas[2:3]) == {
        "tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]
    }
    assert openai_delta([]) is None


def test_detect():
    assert get_tool_parser("hermes").detect(QWEN_TWO_CALLS)
    assert not get_tool_parser("hermes").detect("plain text")
    assert get_tool_parser("mistral").detect("[TOOL_CALLS]f[ARGS]{}")
    assert get_tool_parser("llama3").detect('{"name": "f", "parameters": {}}')
    assert not get_tool_parser("llama3").detect("Hello")


def test_detect_from_chat_template():
    assert detect_tool_parser("{{- '<tool_call>\\n' + tool_call | tojson }}") == "hermes"
    assert detect_tool_parser("{{ '[TOOL_CALLS] [' }}") == "mistral"
    assert detect_tool_parser("{{- '<|python_tag|>' + tool_call.name }}") == "llama3"
    llama = "<|start_header_id|>ipython<|end_header_id|>{{ '\"parameters\": ' }}"
    assert detect_tool_parser(llama) == "llama3"
    assert detect_tool_parser("{{ bos_token }}<|im_start|>user") is None
    assert detect_tool_parser(None) is None
    with pytest.raises(ValueError, match="unknown tool-call parser"):
        get_tool_parser("nope")


# --- tool_choice constraints -------------------------------------------------------------
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "minLength": 1},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 14},
                    "threshold": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book",
            "parameters": {
                "type": "object",
                "$defs": {
                    "person": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "age": {"type": ["integer", "null"]},
                        },
                        "required": ["name", "age"],
                    }
                },
                "properties": {
                    "guests": {
                        "type": "array",
                        "items": {"$ref": "#/$defs/person"},
                        "minItems": 1,
                        "maxItems": 3,
                    },
                    "date": {"type": "string", "format": "date"},
                    "notes": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "options": {"type": "object", "properties": {"vip": {"type": "boolean"}}},
                },
                "required": ["guests", "date"],
            },
        },
    },
    {"type": "function", "function": {"name": "ping"}},
]
PARAMS = {t["function"]["name"]: t["function"].get("parameters", {}) for t in TOOLS}
VALID = [
    ("get_weather", {"city": "Paris"}),
    ("get_weather", {"city": "Zürich HB", "unit": "celsius", "days": 14, "threshold": 0.25}),
    ("get_weather", {"city": "Oslo", "days": 1, "threshold": 1}),
    (
        "book",
        {
            "guests": [{"name": "Ann", "age": 41}, {"name": "Bo", "age": None}],
            "date": "2025-02-28",
            "notes": None,
            "options": {"vip": True},
        },
    ),
    (
        "book",
        {
            "guests": [{"name": 'Cy "C"', "age": 7}],
            "date": "2024-12-01",
            "notes": "window {seat}\n\\",
        },
    ),
    ("ping", {}),
]
INVALID = [
    ("get_weather", {"unit": "celsius"}),
    ("get_weather", {"city": "Paris", "unit": "kelvin"}),
    ("get_weather", {"city": "Paris", "days": 15}),
    ("get_weather", {"city": ""}),
    ("get_weather", {"city": "Paris", "threshold": 1.5}),
    ("book", {"guests": [], "date": "2025-01-01"}),
    ("book", {"guests": [{"name": "A", "age": 1}] * 4, "date": "2025-01-01"}),
    ("book", {"guests": [{"name": "A"}], "date": "2025-01-01"}),
    ("book", {"guests": [{"name": "A", "age": 1}], "date": "2025-13-01"}),
]


def render(parser: str, calls: list[tuple[str, dict]]) -> str:
    """The text a constrained model writes for `calls` in the parser's format."""
    if parser == "llama3":
        ((name, args),) = calls
        return json.dumps({"name": name, "parameters": args}, ensure_ascii=False)
    if parser == "mistral":
        return json.dumps([{"name": n, "arguments": a} for n, a in calls], ensure_ascii=False)
    return "\n".join(
        "<tool_call>\n"
        + json.dumps({"name": n, "arguments": a}, ensure_ascii=False)
        + "\n</tool_call>"
        for n, a in calls
    )


def grammar(constraint: dict):
    xgr = pytest.importorskip("xgrammar")

    if "json_schema" in constraint:
        return xgr.Grammar.from_json_schema(constraint["json_schema"], any_whitespace=False)
    return xgr.Grammar.from_ebnf(constraint["ebnf"])


def accepts(g, text: str) -> bool:
    """Whether xgrammar's grammar g matches text whole (its test helper, no tokenizer)."""
    from xgrammar.testing import _is_grammar_accept_string

    return _is_grammar_accept_string(g, text)


PARSERS = ["llama3", "hermes", "mistral"]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("call", VALID, ids=[f"{n}-{i}" for i, (n, _) in enumerate(VALID)])
def test_constrained_outputs_parse_back_valid(parser, call):
    name, args = call
    choices = ["required", {"type": "function", "function": {"name": name}}]
    for choice in choices:
        c = constraint_for_tool_choice(parser, TOOLS, choice)
        text = render(parser, [call])
        assert accepts(grammar(c), text), (choice, text)
        if "json_schema" in c:
            validate(json.loads(text), json.loads(c["json_schema"]))
        result = check_stream(get_tool_parser(parser, tools=TOOLS), text)
        assert result.content == "" and len(result.tool_calls) == 1
        got = result.tool_calls[0]
        assert got.name == name
        validate(json.loads(got.arguments_json), PARAMS[name])


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("call", INVALID, ids=[f"{n}-{i}" for i, (n, _) in enumerate(INVALID)])
def test_constraints_reject_invalid_arguments(parser, call):
    with pytest.raises(jsonschema.ValidationError):
        validate(call[1], PARAMS[call[0]])
    c = constraint_for_tool_choice(parser, TOOLS, "required")
    assert not accepts(grammar(c), render(parser, [call]))


def test_named_choice_excludes_other_tools():
    for parser in PARSERS:
        c = constraint_for_tool_choice(
            parser, TOOLS, {"type": "function", "function": {"name": "ping"}}
        )
        assert accepts(grammar(c), render(parser, [("ping", {})]))
        assert not accepts(grammar(c), render(parser, [("get_weather", {"city": "x"})]))


def test_parallel_calls():
    calls = [("get_weather", {"city": "Paris"}), ("ping", {})]
    for parser in ("hermes", "mistral"):
        text = render(parser, calls)
        assert accepts(grammar(constraint_for_tool_choice(parser, TOOLS, "required")), text)
        single = constraint_for_tool_choice(parser, TOOLS, "required", parallel=False)
        assert not accepts(grammar(single), text)
        result = get_tool_parser(parser).parse(text)
        assert [(c.name, json.loads(c.arguments_json)) for c in result.tool_calls] == calls


def test_constraint_choices_and_errors():
    assert constraint_for_tool_choice("hermes", TOOLS, "auto") is None
    assert constraint_for_tool_choice("hermes", TOOLS, "none") is None
    assert constraint_for_tool_choice("hermes", TOOLS, None) is None
    with pytest.raises(ValueError, match="not in tools"):
        constraint_for_tool_choice("llama3", TOOLS, {"type": "function", "function": {"name": "x"}})
    with pytest.raises(ValueError, match="at least one tool"):
        constraint_for_tool_choice("mistral", [], "required")


def test_ebnf_in_llguidance(tokenizer):
    """The Hermes grammar works in the alternative backend too: llguidance converts the GBNF,
    accepts the valid calls token by token and rejects the invalid ones."""
    llguidance = pytest.importorskip("llguidance")
    hf = pytest.importorskip("llguidance.hf")
    c = constraint_for_tool_choice("hermes", TOOLS, "required")
    g = llguidance.grammar_from("ebnf", c["ebnf"])
    assert llguidance.LLMatcher.validate_grammar(g) == ""
    lexicon = hf.from_tokenizer(tokenizer)

    def matches(text: str) -> bool:
        m = llguidance.LLMatcher(lexicon, g, log_level=0)
        ids = tokenizer.encode(text, add_special_tokens=False)
        return all(m.consume_token(t) for t in ids) and m.is_accepting()

    assert all(matches(render("hermes", [call])) for call in VALID)
    assert not any(matches(render("hermes", [call])) for call in INVALID)


@pytest.mark.parametrize("parser", PARSERS)
def test_random_grammar_walks_validate(parser, tokenizer):
    """Outputs sampled at random from the compiled constraint (SmolLM2's vocabulary) parse
    back into calls whose arguments validate against the tool's schema."""
    import torch

    xgr = pytest.importorskip("xgrammar")
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, stop_token_ids=[tokenizer.eos_token_id])
    compiler = xgr.GrammarCompiler(info)
    c = constraint_for_tool_choice(parser, TOOLS, "required")
    compiled = (
        compiler.compile_json_schema(c["json_schema"], any_whitespace=False)
        if "json_schema" in c
        else compiler.compile_grammar(c["ebnf"])
    )
    closers = torch.tensor([any(ch in t for ch in b'"}]') for t in info.decoded_vocab])
    rng = random.Random(0)
    done = 0
    for _ in range(8):
        m = xgr.GrammarMatcher(compiled)
        mask = xgr.allocate_token_bitmask(1, info.vocab_size)
        ids = []
        for _ in range(400):
            m.fill_next_token_bitmask(mask)
            bits = (mask[0].unsqueeze(1) >> torch.arange(32)) & 1
            allowed = bits.flatten()[: info.vocab_size].bool()
            pool = (
                allowed & closers if rng.random() < 0.5 and (allowed & closers).any() else allowed
            )
            choices = pool.nonzero().flatten()
            tok = int(choices[rng.randrange(len(choices))])
            if allowed[tokenizer.eos_token_id] and rng.random() < 0.7:
                tok = tokenizer.eos_token_id
            assert m.accept_token(tok)
            if m.is_terminated():
                break
            ids.append(tok)
        if not m.is_terminated():
            continue
        text = tokenizer.decode(ids)
        result = get_tool_parser(parser, tools=TOOLS).parse(text)
        assert result.tool_calls and result.content == "", text
        for call in result.tool_calls:
            # xgrammar's JSON-schema "date" allows days up to 31 in any month: formats are
            # checked where the grammar is ours (GBNF)
            validate(json.loads(call.arguments_json), PARAMS[call.name], "ebnf" in c)
        done += 1
    assert done >= 4
