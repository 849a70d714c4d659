"""Constrained generation through the Engine (scheduler process and all) on a random tiny Llama
over SmolLM2's vocabulary: its unconstrained output is noise, so a well-formed output is the
grammar's doing. Both backends; length limits, ignore_eos, mixed batches, synchronous errors,
and retraction under KV pressure keeping each matcher consistent with its request."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from sglang.engine.engine import Engine

PROMPTS = [f"Request number {i}: answer briefly." for i in range(8)]
LIST_REGEX = r"[a-z]{1,8}(,[a-z]{1,8}){0,5}"
EBNF = 'root ::= ("yes" | "no") ", because " [a-z ]{1,20} "."'
EBNF_AS_REGEX = r"(yes|no), because [a-z ]{1,20}\."  # the same language, checked independently
SCHEMA = {
    "type": "object",
    "properties": {
        "a": {"type": "integer", "minimum": 0, "maximum": 99},
        "b": {"enum": ["x", "y"]},
        "c": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3},
        "d": {"type": "string", "pattern": "^[A-Z]{2}[0-9]$"},
    },
    "required": ["a", "b", "c", "d"],
}
GREEDY = {"temperature": 0, "max_new_tokens": 64}


def engine(path: str, **kw) -> Engine:
    kw.setdefault("max_total_tokens", 4096)
    return Engine(model_path=path, device="xeon", dtype="float32", log_level="warning", **kw)


@pytest.fixture(scope="module", params=["xgrammar", "llguidance"])
def eng(request, tiny_model_dir):
    with engine(tiny_model_dir, grammar_backend=request.param) as e:
        yield e


def finished(out) -> str:
    return out["meta_info"]["finish_reason"]["type"]


def test_regex_ebnf_and_schema_outputs_are_valid(eng):
    constraints = [{"regex": LIST_REGEX}, {"ebnf": EBNF}, {"json_schema": json.dumps(SCHEMA)}]
    params = [{**GREEDY, **constraints[i % 3]} for i in range(len(PROMPTS))]
    outs = eng.generate(PROMPTS, params)
    for p, out in zip(params, outs):
        assert finished(out) == "stop", out
        assert out["output_ids"][-1] == 2  # ended by EOS, which the grammar allowed
        if "regex" in p:
            assert re.fullmatch(LIST_REGEX, out["text"]), out["text"]
        elif "ebnf" in p:
            assert re.fullmatch(EBNF_AS_REGEX, out["text"]), out["text"]
        else:
            jsonschema.validate(json.loads(out["text"]), SCHEMA)
    eng.check_idle()


def test_seeded_sampling_json_object(eng):
    params = {
        "temperature": 1.0,
        "sampling_seed": 5,
        "max_new_tokens": 48,
        "json_schema": json.dumps({"type": "object"}),
    }
    outs = eng.generate(PROMPTS[:4], [params] * 4)
    for out in outs:
        if finished(out) == "stop":
            assert isinstance(json.loads(out["text"]), dict)
        else:  # a random model may well ramble inside a string: the text is still a prefix
            assert finished(out) == "length" and out["text"].startswith("{")
    again = eng.generate(PROMPTS[:4], [params] * 4)
    assert [o["output_ids"] for o in again] == [o["output_ids"] for o in outs]


def test_grammar_that_cannot_finish_ends_by_length(eng):
    out = eng.generate(PROMPTS[0], {**GREEDY, "regex": "a{300}", "max_new_tokens": 6})
    assert out["meta_info"]["finish_reason"] == {"type": "length", "length": 6}
    assert len(out["output_ids"]) == 6 and set(out["text"]) == {"a"}


def test_terminated_grammar_ends_even_with_ignore_eos(eng):
    out = eng.generate(PROMPTS[0], {**GREEDY, "regex": "(yes|no)", "ignore_eos": True})
    assert finished(out) == "stop" and out["text"] in ("yes", "no")
    assert out["meta_info"]["finish_reason"]["matched"] == 2


def test_unconstrained_requests_are_unaffected(eng):
    free = {**GREEDY, "ignore_eos": True, "max_new_tokens": 16}
    alone = eng.generate(PROMPTS[:3], [free] * 3)
    mixed = eng.generate(PROMPTS[:3] * 2, [free] * 3 + [{**GREEDY, "regex": LIST_REGEX}] * 3)
    assert [o["output_ids"] for o in mixed[:3]] == [o["output_ids"] for o in alone]


@pytest.mark.parametrize(
    "params,message",
    [
        ({"regex": "[a-"}, "invalid regex"),
        ({"json_schema": '{"type": "foo"}'}, "invalid json_schema"),
        ({"json_schema": "{"}, "invalid json_schema"),
        ({"ebnf": 'root ::= "a" missing'}, "invalid ebnf"),
        ({"regex": "a", "ebnf": 'root ::= "a"'}, "only one of"),
    ],
)
def test_invalid_constraints_fail_at_once(eng, params, message):
    with pytest.raises(ValueError, match=message):
        eng.generate(PROMPTS[0], {**GREEDY, **params})


def test_no_tokenizer_no_constraints(tiny_model_dir):
    with engine(tiny_model_dir, skip_tokenizer_init=True) as e:
        with pytest.raises(ValueError, match="need a tokenizer"):
            e.generate(input_ids=[1, 2, 3], sampling_params={"regex": "a+"})
        assert len(e.generate(input_ids=[1, 2, 3], sampling_params=GREEDY)["output_ids"]) > 0


def test_retraction_keeps_matchers_consistent(tiny_model_dir):
    """Under KV pressure requests are retracted and re-prefilled with their output so far; the
    matcher must not see those tokens again. Each output equals its solo run."""
    regex = r"([0-9]{5}-){9}[0-9]{5}"  # 59 tokens: SmolLM2 has one token per digit
    prompts = [[1] + [(5 * i + 3 * j) % 4000 + 100 for j in range(100)] for i in range(16)]
    params = {**GREEDY, "max_new_tokens": 64, "regex": regex}
    with engine(tiny_model_dir, max_total_tokens=1024) as e:
        outs = e.generate(input_ids=prompts, sampling_params=params)
        stats = e.get_stats()
        e.check_idle()
        retracted = [i for i, o in enumerate(outs) if o["meta_info"]["retractions"] > 0][:4]
        solo = [e.generate(input_ids=prompts[i], sampling_params=params) for i in retracted]
    assert stats["retractions"] > 0 and retracted, stats
    for out in outs:
        assert finished(out) == "stop" and re.fullmatch(regex, out["text"]), out
    assert [o["output_ids"] for o in solo] == [outs[i]["output_ids"] for i in retracted]
