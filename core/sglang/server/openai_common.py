"""What the OpenAI routes share: request fields to sampling parameters, the common checks,
usage, and token texts for logprobs."""

from __future__ import annotations

from typing import Any

from sglang.engine.records import GenerateResult
from sglang.server.errors import APIError
from sglang.server.protocol import SamplingFields
from sglang.server.request_fields import (
    OPENAI_INFORMATIONAL,
    OPENAI_REFUSED,
    refuse_unknown,
    refuse_unserved,
)
from sglang.server.state import MAX_N, ServerState


def sampling_fields(req: SamplingFields, max_new_tokens: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "min_new_tokens": req.min_tokens,
        "frequency_penalty": req.frequency_penalty,
        "presence_penalty": req.presence_penalty,
        "stop": [req.stop] if isinstance(req.stop, str) else list(req.stop or []),
        "stop_token_ids": req.stop_token_ids or [],
        "stop_regex": req.stop_regex,
        "ignore_eos": req.ignore_eos,
        "skip_special_tokens": req.skip_special_tokens,
        "no_stop_trim": req.no_stop_trim,
        "logit_bias": req.logit_bias or {},
        "regex": req.regex,
        "json_schema": req.json_schema,
        "ebnf": req.ebnf,
    }
    for name in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty"):
        value = getattr(req, name)
        if value is not None:
            fields[name] = value
    if req.seed is not None:
        fields["sampling_seed"] = req.seed
    return fields


def check_common(
    state: ServerState, req: SamplingFields, max_tokens: int | None, route: str
) -> None:
    extra = req.model_extra or {}
    refuse_unserved(extra, OPENAI_REFUSED, route)
    refuse_unknown(set(extra), set(OPENAI_REFUSED) | OPENAI_INFORMATIONAL, route)
    state.check_model(req.model)
    if max_tokens is not None and max_tokens < 1:
        raise APIError(400, f"max_tokens must be at least 1, got {max_tokens}", "max_tokens")
    if not 1 <= req.n <= MAX_N:
        raise APIError(400, f"n must be in [1, {MAX_N}], got {req.n}", "n")
    if req.temperature is not None and req.temperature < 0:
        raise APIError(400, f"temperature must be >= 0, got {req.temperature}", "temperature")
    if req.top_p is not None and not 0 < req.top_p <= 1:
        raise APIError(400, f"top_p must be in (0, 1], got {req.top_p}", "top_p")


def usage(prompt_tokens: int, results: list[GenerateResult]) -> dict[str, Any]:
    """The usage block; cached tokens: the most any choice reused."""
    completion = sum(r.completion_tokens for r in results)
    cached = max(r.cached_tokens for r in results)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def token_text(state: ServerState, token_id: int, text: str | None = None) -> str:
    """A logprob tuple's text, or the token decoded alone (its id without a tokenizer)."""
    if text is not None:
        return text
    return state.tokenizer.decode([token_id]) if state.tokenizer is not None else str(token_id)


def seeded(fields: dict, i: int) -> dict:
    """Choice i of n: its own seed when a seed is given, so the choices differ reproducibly."""
    if i and fields.get("sampling_seed") is not None:
        return {**fields, "sampling_seed": fields["sampling_seed"] + i}
    return fields
