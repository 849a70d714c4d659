"""The frontend's result record: one output chunk of one request, as the tokenizer manager
hands it to the Engine and the HTTP routes. `to_dict` is SGLang's `{text, output_ids,
meta_info}` shape, which the Engine returns and the native /generate route sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sglang.scheduler.req import FinishReason

LogprobTuple = tuple  # SGLang's (logprob, token_id, text or None)


@dataclass
class GenerateResult:
    """Cumulative: `text` and `output_ids` hold everything generated so far; the last chunk
    of a request has `finish_reason`. The logprob lists are None unless logprobs were asked
    for (the input ones also until the prompt's have come)."""

    rid: str
    text: str
    output_ids: list[int]
    finish_reason: FinishReason | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    retractions: int
    e2e_latency: float
    ttft: float | None = None
    output_token_logprobs: list[LogprobTuple] | None = None
    output_top_logprobs: list[list[LogprobTuple]] | None = None
    input_token_logprobs: list[LogprobTuple] | None = None
    input_top_logprobs: list[list[LogprobTuple] | None] | None = None

    @property
    def finish_type(self) -> str | None:
        """ "stop", "length", "abort", or None while the request runs."""
        return None if self.finish_reason is None else self.finish_reason.type

    def meta_info(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "id": self.rid,
            "finish_reason": self.finish_reason.to_json() if self.finish_reason else None,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "retractions": self.retractions,
            "e2e_latency": self.e2e_latency,
        }
        if self.ttft is not None:
            meta["ttft"] = self.ttft
        if self.output_token_logprobs is not None:
            meta["output_token_logprobs"] = self.output_token_logprobs
            meta["output_top_logprobs"] = self.output_top_logprobs
            if self.input_token_logprobs is not None:
                meta["input_token_logprobs"] = self.input_token_logprobs
                meta["input_top_logprobs"] = self.input_top_logprobs
        return meta

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "output_ids": self.output_ids, "meta_info": self.meta_info()}
