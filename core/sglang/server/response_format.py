"""OpenAI's `response_format` as sampling fields (SGLang's mapping).

- {"type": "text"} or absent: no constraint;
- {"type": "json_object"}: json_schema {"type": "object"} (any JSON object);
- {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": ...}}:
  json_schema is the schema. Generation always follows the schema, so `strict` changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from sglang.server.errors import APIError

ANY_OBJECT = '{"type": "object"}'


def response_format_fields(response_format: dict[str, Any] | None) -> dict[str, Any]:
    """The sampling fields a response_format asks for; APIError 400 when it is malformed."""
    if response_format is None:
        return {}
    kind = response_format.get("type")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"json_schema": ANY_OBJECT}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise APIError(
                400,
                "response_format.json_schema must be an object with a schema",
                "response_format",
            )
        schema = spec.get("schema", spec.get("schema_"))
        if not isinstance(schema, (dict, bool)):
            raise APIError(
                400,
                "response_format.json_schema.schema must be a JSON Schema object",
                "response_format",
            )
        return {"json_schema": json.dumps(schema)}
    raise APIError(
        400,
        f"response_format.type must be text, json_object or json_schema, got {kind!r}",
        "response_format",
    )


def constrained_fields(fields: dict[str, Any], response_format: dict | None) -> dict[str, Any]:
    """response_format's fields to merge into `fields`, which must not hold another
    constraint (the extra json_schema / regex / ebnf)."""
    extra = response_format_fields(response_format)
    if extra:
        given = [k for k in ("json_schema", "regex", "ebnf") if fields.get(k) is not None]
        if given:
            raise APIError(
                400,
                f"response_format cannot be combined with {', '.join(given)}",
                "response_format",
            )
    return extra
