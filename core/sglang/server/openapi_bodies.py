"""OpenAPI descriptions of request bodies that routes parse by hand.

The native /generate takes SGLang's loose single-or-batch forms and reads its JSON itself, so
FastAPI cannot infer its body; without this /openapi.json would say nothing about its fields and
neither clients nor the API fuzz test could reach them. The route stays the judge of what is
valid: this is its documentation, checked against the route by tests/server/test_fuzz_api.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from sglang.sampling.params import SamplingParams
from sglang.server.request_fields import GENERATE_INFORMATIONAL


class GenerateRequest(BaseModel):
    text: str | list[str] | None = None
    input_ids: list[int] | list[list[int]] | None = None
    sampling_params: dict[str, Any] | list[dict[str, Any]] | None = None
    rid: str | list[str] | None = None
    stream: bool = False
    return_logprob: bool = False
    logprob_start_len: int | None = None
    top_logprobs_num: int | None = None
    return_text_in_logprobs: bool = False
    priority: int | None = None  # with --enable-priority-scheduling (else a 400)


def sampling_params_schema() -> dict[str, Any]:
    """SamplingParams' fields (unknown names are refused by SamplingParams.from_dict)."""
    schema = TypeAdapter(SamplingParams).json_schema()
    schema["additionalProperties"] = False
    return schema


def generate_openapi() -> dict[str, Any]:
    """The openapi_extra of POST /generate: its request body."""
    schema = GenerateRequest.model_json_schema()
    one = sampling_params_schema()
    schema["properties"]["sampling_params"] = {
        "anyOf": [one, {"type": "array", "items": one}, {"type": "null"}],
        "description": "one object, or one per prompt of a batch",
    }
    for name in sorted(GENERATE_INFORMATIONAL):
        schema["properties"][name] = {"description": "informational: it changes no answer"}
    # upstream fields this server does not serve are refused by name unless they ask for
    # nothing (request_fields.GENERATE_REFUSED); the schema leaves them out
    schema["additionalProperties"] = False
    schema["description"] = "SGLang's native request: exactly one of text or input_ids"
    body = {"required": True, "content": {"application/json": {"schema": schema}}}
    return {"requestBody": body}
