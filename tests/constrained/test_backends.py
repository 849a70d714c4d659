"""Both grammar backends on SmolLM2's tokenizer: validation errors, masks, accepting tokens,
EOS exactly where the grammar may end, termination, rollback, and the bitmask packing against
xgrammar's own applier."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import EOS, VOCAB
from sglang.constrained import GrammarError, create_backend
from sglang.constrained.base import constraint_of
from sglang.constrained.llguidance import strict_schema
from sglang.constrained.registry import backend_class
from sglang.ops.grammar import apply_bitmask
from sglang.sampling.params import SamplingParams

BACKENDS = ("xgrammar", "llguidance")


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, tokenizer):
    return create_backend(request.param, tokenizer, VOCAB, [EOS])


def allowed(matcher) -> set[int]:
    row = torch.empty((VOCAB + 31) // 32, dtype=torch.int32)
    matcher.fill_bitmask(row)
    bits = (row.unsqueeze(-1) >> torch.arange(32, dtype=torch.int32)) & 1
    return set(bits.flatten()[:VOCAB].nonzero().flatten().tolist())


def walk(backend, kind, spec, text, tokenizer):
    """Feed `text` token by token, checking each token is allowed first; the matcher after."""
    m = backend.matcher(backend.compile(kind, spec))
    for t in tokenizer.encode(text):
        assert t in allowed(m), (text, tokenizer.decode([t]))
        assert m.accept_token(t)
    return m


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize(
    "kind,spec,fragment",
    [
        ("json_schema", "not json", "invalid json_schema"),
        ("json_schema", '{"type": "foo"}', "foo"),
        ("regex", "[a-", "invalid regex"),
        ("regex", "(abc", "invalid regex"),
        ("ebnf", 'root ::= "a" undefined_rule', "undefined_rule"),
        ("ebnf", 'start ::= "a"', "invalid ebnf"),
    ],
)
def test_validate_names_the_problem(name, kind, spec, fragment):
    with pytest.raises(GrammarError) as err:
        backend_class(name).validate(kind, spec)
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"invalid {kind}: ")
    assert ".cc:" not in str(err.value)


@pytest.mark.parametrize("name", BACKENDS)
def test_validate_accepts_valid_constraints(name):
    cls = backend_class(name)
    cls.validate("json_schema", json.dumps({"type": "object", "properties": {"a": {}}}))
    cls.validate("regex", r"\d{3}-[a-z]+")
    cls.validate("ebnf", 'root ::= "yes" | "no"')
    cls.validate("json_object", "")


def test_compile_error_is_a_grammar_error(backend):
    with pytest.raises(GrammarError, match="invalid regex"):
        backend.compile("regex", "[a-")


def test_regex_walk_eos_only_at_the_end(backend, tokenizer):
    pattern = r"[0-9]{3}-[a-z]+"
    m = backend.matcher(backend.compile("regex", pattern))
    ids = tokenizer.encode("123-abc")
    for i, t in enumerate(ids):
        mask = allowed(m)
        assert t in mask
        assert (EOS in mask) == bool(re.fullmatch(pattern, tokenizer.decode(ids[:i])))
        assert m.accept_token(t)
        assert not m.is_terminated()
    assert EOS in allowed(m)
    assert m.accept_token(EOS)
    assert m.is_terminated()
    assert not m.accept_token(tokenizer.encode("a")[0])


def test_complete_grammar_allows_only_eos(backend, tokenizer):
    m = walk(backend, "regex", "abc", "abc", tokenizer)
    assert allowed(m) == {EOS}


def test_refused_token_leaves_the_state(backend, tokenizer):
    m = backend.matcher(backend.compile("regex", "abc"))
    assert not m.accept_token(tokenizer.encode("x")[0])
    assert not m.accept_token(EOS)
    for t in tokenizer.encode("abc"):
        assert m.accept_token(t)
    assert m.accept_token(EOS) and m.is_terminated()


def test_rollback_restores_masks(backend, tokenizer):
    m = backend.matcher(backend.compile("regex", r"[0-9]{3}-[a-z]+"))
    ids = tokenizer.encode("123-ab")
    assert len(ids) >= 4
    assert m.accept_token(ids[0])
    after_one = allowed(m)
    for t in ids[1:4]:
        assert m.accept_token(t)
    m.rollback(3)
    assert allowed(m) == after_one
    for t in ids[1:]:
        assert m.accept_token(t)
    assert m.accept_token(EOS) and m.is_terminated()
    m.rollback(1)
    assert not m.is_terminated()
    assert EOS in allowed(m)


def test_json_object_is_any_object(backend, tokenizer):
    compiled = backend.compile("json_object", "")
    first = allowed(backend.matcher(compiled))
    assert tokenizer.encode("{")[0] in first
    assert tokenizer.encode("[")[0] not in first
    m = walk(backend, "json_object", "", '{"a": [1, 2], "b": {"c": null}}', tokenizer)
    assert EOS in allowed(m)


def test_json_schema_is_strict(backend, tokenizer):
    schema = json.dumps(
        {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        }
    )
    m = walk(backend, "json_schema", schema, '{"name": "Bo", "age": 3}', tokenizer)
    assert allowed(m) == {EOS}
    m = walk(backend, "json_schema", schema, '{"name": "Bo", "age": 3', tokenizer)
    assert tokenizer.encode(",")[0] not in allowed(m)  # no unlisted properties


def test_ebnf(backend, tokenizer):
    grammar = 'root ::= ("yes" | "no") ", because " [a-z ]+ "."'
    m = walk(backend, "ebnf", grammar, "no, because it rains.", tokenizer)
    assert allowed(m) == {EOS}


def test_every_stop_id_ends(tokenizer):
    for name in BACKENDS:
        b = create_backend(name, tokenizer, VOCAB, [EOS, 0])
        m = b.matcher(b.compile("regex", "a"))
        assert m.accept_token(tokenizer.encode("a")[0])
        assert allowed(m) == {EOS, 0}
        assert m.accept_token(0) and m.is_terminated()


def test_mask_packing_matches_xgrammar_applier(backend, tokenizer):
    import xgrammar as xgr

    m = walk(backend, "json_object", "", '{"key": "va', tokenizer)
    mask = torch.empty(1, (VOCAB + 31) // 32, dtype=torch.int32)
    m.fill_bitmask(mask[0])
    logits = torch.randn(1, VOCAB)
    ours, theirs = logits.clone(), logits.clone()
    apply_bitmask(logits=ours, bitmask=mask)
    xgr.apply_token_bitmask_inplace(theirs, mask)
    assert torch.equal(ours, theirs)
    assert set(torch.isfinite(ours[0]).nonzero().flatten().tolist()) == allowed(m)


def test_constraint_of():
    def params(**kw):
        return SamplingParams.from_dict(kw)

    assert constraint_of(params()) is None
    assert constraint_of(params(regex="a+")) == ("regex", "a+")
    assert constraint_of(params(ebnf='root ::= "a"')) == ("ebnf", 'root ::= "a"')
    assert constraint_of(params(json_schema='{"type":"object"}')) == ("json_object", "")
    schema = '{"type": "object", "properties": {}}'
    assert constraint_of(params(json_schema=schema)) == ("json_schema", schema)
    with pytest.raises(ValueError, match="only one of"):
        params(regex="a", ebnf='root ::= "a"')


def test_strict_schema_closes_listed_objects_only():
    schema = {
        "type": "object",
        "properties": {
            "properties": {"type": "object", "properties": {"x": {}}},
            "free": {"type": "object"},
            "open": {"type": "object", "properties": {}, "additionalProperties": True},
            "list": {"type": "array", "items": {"properties": {"y": {}}}},
        },
        "$defs": {"d": {"anyOf": [{"properties": {"z": {}}}, {"type": "null"}]}},
    }
    out = strict_schema(schema)
    assert out["additionalProperties"] is False
    assert set(out["properties"]) == {"properties", "free", "open", "list"}
    assert out["properties"]["properties"]["additionalProperties"] is False
    assert "additionalProperties" not in out["properties"]["free"]
    assert out["properties"]["open"]["additionalProperties"] is True
    assert out["properties"]["list"]["items"]["additionalProperties"] is False
    assert out["$defs"]["d"]["anyOf"][0]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # the input is not modified


def test_batch_fill_equals_one_by_one(backend, tokenizer):
    compiled = backend.compile("json_object", "")
    matchers = [backend.matcher(compiled) for _ in range(6)]
    for i, m in enumerate(matchers):
        for t in tokenizer.encode('{"k": "' + "v" * i)[: i + 1]:
            assert m.accept_token(t)
    words = (VOCAB + 31) // 32
    batch = torch.zeros(9, words, dtype=torch.int32)
    backend.fill_bitmasks(matchers, batch)
    for i, m in enumerate(matchers):
        row = torch.empty(words, dtype=torch.int32)
        m.fill_bitmask(row)
        assert torch.equal(batch[i], row)
    assert not batch[6:].any()
