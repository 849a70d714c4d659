"""OpenAI response_format -> sampling fields (SGLang's mapping), and its 400s."""

from __future__ import annotations

import json

import pytest
from sglang.server.errors import APIError
from sglang.server.response_format import constrained_fields, response_format_fields


def test_mapping():
    assert response_format_fields(None) == {}
    assert response_format_fields({"type": "text"}) == {}
    assert response_format_fields({"type": "json_object"}) == {"json_schema": '{"type": "object"}'}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fields = response_format_fields(
        {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    )
    assert json.loads(fields["json_schema"]) == schema


@pytest.mark.parametrize(
    "rf,needle",
    [
        ({"type": "yaml"}, "response_format.type"),
        ({}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema must be"),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "schema must be"),
        ({"type": "json_schema", "json_schema": {"schema": [1]}}, "schema must be"),
    ],
)
def test_malformed_is_400(rf, needle):
    with pytest.raises(APIError) as err:
        response_format_fields(rf)
    assert err.value.status == 400 and needle in err.value.message
    assert err.value.param == "response_format"


def test_not_combined_with_another_constraint():
    rf = {"type": "json_object"}
    assert constrained_fields({"regex": None, "json_schema": None, "ebnf": None}, rf)
    with pytest.raises(APIError, match="cannot be combined with regex"):
        constrained_fields({"regex": "a+"}, rf)
    assert constrained_fields({"regex": "a+"}, {"type": "text"}) == {}
