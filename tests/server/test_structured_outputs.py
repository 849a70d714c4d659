"""Structured outputs through the real server and the `openai` client on SmolLM2-135M-Instruct:
JSON schemas (response_format and the json_schema extra), json_object, regex and EBNF on the
OpenAI and native routes, with xgrammar (the session's server) and a subset with llguidance.
Every output must finish by its grammar (finish_reason "stop") and be valid: parsed and checked
with `jsonschema`, re.fullmatch, and EBNF outputs accepted by the other backend's matcher and by
an equivalent regex. Invalid constraints are 400s naming the problem; a grammar that cannot end
within max_tokens ends with "length"."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import pytest
from server_process import ServerProcess
from structured_schemas import SCHEMAS

MODEL = "SmolLM2-135M-Instruct"
MAX_TOKENS = 200
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
REGEXES = [
    ("Give a US phone number.", r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}"),
    ("What is the capital of France?", r"(Paris|London|Berlin)"),
    ("Give an email address.", r"[a-z]{1,12}@[a-z]{1,10}\.(com|org)"),
    ("List three colors.", r"[A-Za-z]{1,10}(, [A-Za-z]{1,10}){2}"),
    ("Give a time of day.", r"([01][0-9]|2[0-3]):[0-5][0-9]"),
    ("Spell a word.", r"([a-z]-){2,6}[a-z]"),
]
# (question, EBNF, the same language as a regex for an independent check)
EBNFS = [
    (
        "Is the sky blue?",
        'root ::= ("yes" | "no") ", because " [a-z ]{1,40} "."',
        r"(yes|no), because [a-z ]{1,40}\.",
    ),
    (
        "Add two small numbers.",
        'root ::= num " + " num " = " num\nnum ::= [0-9]{1,3}',
        r"[0-9]{1,3} \+ [0-9]{1,3} = [0-9]{1,3}",
    ),
    (
        "Write a short shopping list.",
        'root ::= item ("\\n" item){1,3}\nitem ::= "- " [a-z]{1,12}',
        r"- [a-z]{1,12}(\n- [a-z]{1,12}){1,3}",
    ),
    (
        "Name a greeting in JSON.",
        'root ::= "{\\"greeting\\": \\"" word "\\"}"\nword ::= [A-Za-z]{1,15}',
        r'\{"greeting": "[A-Za-z]{1,15}"\}',
    ),
]


@pytest.fixture(scope="module")
def llg_server():
    s = ServerProcess(
        "--max-total-tokens", "16384", "--max-running-requests", "64",
        "--grammar-backend", "llguidance",
    )  # fmt: skip
    yield s
    s.stop()


@pytest.fixture(scope="module")
def llg_client(llg_server):
    import openai

    return openai.OpenAI(base_url=llg_server.base_url + "/v1", api_key="none", max_retries=0)


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": f"{question} Answer in JSON."}]


def schema_reply(client, question: str, schema: dict):
    r = client.chat.completions.create(
        model=MODEL,
        messages=ask(question),
        temperature=0,
        max_tokens=MAX_TOKENS,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    return r.choices[0]


def schema_problem(choice, schema: dict) -> str | None:
    """None when the reply finished by its grammar and validates; else what is wrong."""
    if choice.finish_reason != "stop":
        return f"finish_reason {choice.finish_reason}: {choice.message.content!r}"
    try:
        value = json.loads(choice.message.content)
        jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    except (ValueError, jsonschema.ValidationError) as e:
        return f"{type(e).__name__}: {str(e)[:200]} in {choice.message.content!r}"
    for prop, sub in schema.get("properties", {}).items():
        if sub.get("format") == "date-time" and prop in value:
            if not RFC3339.fullmatch(value[prop]):
                return f"{prop} is not an RFC 3339 date-time: {value[prop]!r}"
    return None


def check_schemas(client, items: list[tuple[str, dict]]) -> None:
    with ThreadPoolExecutor(len(items)) as pool:
        choices = list(pool.map(lambda item: schema_reply(client, *item), items))
    problems = {
        q: p for (q, s), c in zip(items, choices) if (p := schema_problem(c, s)) is not None
    }
    assert not problems, problems


def test_at_least_30_varied_schemas():
    assert len(SCHEMAS) >= 30
    text = json.dumps([s for _, s in SCHEMAS])
    for keyword in ("anyOf", "enum", "minItems", "maxItems", "pattern", "format", "minimum",
                    "$ref", "prefixItems", "exclusiveMinimum", "const"):  # fmt: skip
        assert keyword in text, keyword


def test_json_schemas_validate(client):
    check_schemas(client, SCHEMAS)


def test_json_schemas_validate_llguidance(llg_client):
    check_schemas(llg_client, SCHEMAS[::3])


@pytest.mark.parametrize("backend", ["xgrammar", "llguidance"])
def test_json_object(backend, client, llg_client):
    c = client if backend == "xgrammar" else llg_client
    r = c.chat.completions.create(
        model=MODEL,
        # A question the 135M model answers in a short object in bfloat16 greedy ("Describe a
        # cat." nests descriptions until the token limit).
        messages=ask("Give the name and age of a person."),
        temperature=0,
        max_tokens=MAX_TOKENS,
        response_format={"type": "json_object"},
    )
    choice = r.choices[0]
    assert choice.finish_reason == "stop", choice
    assert isinstance(json.loads(choice.message.content), dict)


def test_schema_stream_matches_non_stream(client):
    question, schema = SCHEMAS[16]
    full = schema_reply(client, question, schema).message.content
    chunks = client.chat.completions.create(
        model=MODEL,
        messages=ask(question),
        temperature=0,
        max_tokens=MAX_TOKENS,
        stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full
    jsonschema.validate(json.loads(text), schema)


@pytest.mark.parametrize("backend", ["xgrammar", "llguidance"])
def test_regex_outputs_full_match(backend, client, llg_client):
    c = client if backend == "xgrammar" else llg_client

    def one(item):
        question, regex = item
        r = c.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": question}],
            temperature=0,
            max_tokens=MAX_TOKENS,
            extra_body={"regex": regex},
        )
        return r.choices[0]

    with ThreadPoolExecutor(len(REGEXES)) as pool:
        choices = list(pool.map(one, REGEXES))
    for (_, regex), choice in zip(REGEXES, choices):
        assert choice.finish_reason == "stop", (regex, choice)
        assert re.fullmatch(regex, choice.message.content), (regex, choice.message.content)


def accepted_by(backend_name: str, tokenizer, kind: str, spec: str, text: str) -> bool:
    """Whether a fresh matcher of `backend_name` accepts `text` and then may end."""
    from sglang.constrained import create_backend

    backend = create_backend(backend_name, tokenizer, len(tokenizer), [tokenizer.eos_token_id])
    m = backend.matcher(backend.compile(kind, spec))
    tokens = tokenizer.encode(text, add_special_tokens=False)
    return all(m.accept_token(t) for t in tokens) and m.accept_token(tokenizer.eos_token_id)


@pytest.mark.parametrize("backend", ["xgrammar", "llguidance"])
def test_ebnf_outputs_parse(backend, server, llg_server, tokenizer):
    base = (server if backend == "xgrammar" else llg_server).base_url
    other = "llguidance" if backend == "xgrammar" else "xgrammar"

    def one(item):
        question, grammar, _ = item
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
        body = {
            "text": text,
            "sampling_params": {"ebnf": grammar, "temperature": 0, "max_new_tokens": MAX_TOKENS},
        }
        return httpx.post(base + "/generate", json=body, timeout=600).json()

    with ThreadPoolExecutor(len(EBNFS)) as pool:
        outs = list(pool.map(one, EBNFS))
    for (_, grammar, regex), out in zip(EBNFS, outs):
        assert out["meta_info"]["finish_reason"]["type"] == "stop", out
        assert re.fullmatch(regex, out["text"]), (grammar, out["text"])
        assert accepted_by(other, tokenizer, "ebnf", grammar, out["text"]), out["text"]


def test_native_generate_json_schema_and_regex(server):
    schema = {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}},
              "required": ["city"]}  # fmt: skip
    body = {
        "text": ["The capital of France, as JSON:", "A year:"],
        "sampling_params": [
            {"json_schema": json.dumps(schema), "temperature": 0, "max_new_tokens": 40},
            {"regex": "(19|20)[0-9]{2}", "temperature": 0, "max_new_tokens": 40},
        ],
    }
    first, second = httpx.post(server.base_url + "/generate", json=body, timeout=600).json()
    assert json.loads(first["text"]) in ({"city": "Paris"}, {"city": "Rome"})
    assert re.fullmatch("(19|20)[0-9]{2}", second["text"])
    assert first["meta_info"]["finish_reason"]["type"] == "stop"


def test_extra_json_schema_field_on_completions(client):
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["n"],
    }
    r = client.completions.create(
        model=MODEL,
        prompt="A digit in JSON:",
        temperature=0,
        max_tokens=40,
        extra_body={"json_schema": json.dumps(schema)},
    )
    jsonschema.validate(json.loads(r.choices[0].text), schema)


def test_grammar_that_cannot_finish_ends_by_length(client):
    r = client.chat.completions.create(
        model=MODEL,
        messages=ask("Say a lot."),
        temperature=0,
        max_tokens=8,
        extra_body={"regex": "(ab){500}"},
    )
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 8
    assert re.fullmatch("(ab)*a?", r.choices[0].message.content)


def error_of(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    return response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {
            "type": "object", "properties": {"a": {"type": "nonsense"}}}}}}, "nonsense"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "a"}}},
         "response_format.json_schema.schema"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_object"}, "regex": "a+"}, "cannot be combined"),
        ({"regex": "[a-"}, "invalid regex"),
        ({"regex": "(unclosed"}, "invalid regex"),
        ({"ebnf": 'root ::= "a" nowhere'}, "nowhere"),
        ({"json_schema": "{not json"}, "invalid json_schema"),
        ({"regex": "a", "ebnf": 'root ::= "a"'}, "only one of"),
    ],
)  # fmt: skip
def test_invalid_constraints_are_400(server, body, needle):
    payload = {"model": MODEL, "messages": ask("Hi."), "max_tokens": 5, **body}
    message = error_of(httpx.post(server.base_url + "/v1/chat/completions", json=payload))
    assert needle in message


def test_invalid_constraint_on_native_route_and_stream(server):
    body = {"text": "Hi", "sampling_params": {"json_schema": '{"type": "foo"}'}, "stream": True}
    message = error_of(httpx.post(server.base_url + "/generate", json=body))
    assert message.startswith("invalid json_schema") and "foo" in message
    payload = {"model": MODEL, "messages": ask("Hi."), "stream": True, "regex": "[z-a]"}
    assert "invalid regex" in error_of(httpx.post(server.base_url + "/v1/chat/completions",
                                                  json=payload))  # fmt: skip


def test_invalid_constraints_are_400_with_llguidance(llg_server):
    payload = {"model": MODEL, "messages": ask("Hi."), "regex": "[a-"}
    message = error_of(httpx.post(llg_server.base_url + "/v1/chat/completions", json=payload))
    assert message.startswith("invalid regex")
