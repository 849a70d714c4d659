"""`OpenAI(model, base_url=...)`: any OpenAI-compatible server (OpenAI, vLLM, our /v1 routes).

Chat models (the default) take messages: a program's gens must each open an assistant turn,
and its text is rendered as plain `ROLE: content` lines. Completion models (is_chat_model=False)
take the text. `select` needs the log-likelihood of prompt tokens, which the OpenAI API gives
only as `echo` + `logprobs` on /completions (max_tokens 0); a server without them, and every
chat model, raises FeatureUnavailable naming what is missing. Prefix caching is the server's
business here: nothing is sent ahead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from sglang.lang.backend.base import Backend, FeatureUnavailable, Prompt, Scores
from sglang.lang.backend.http import HTTPError, JSONClient
from sglang.lang.chat_template import ChatTemplate, from_jinja, plain
from sglang.lang.ir import GenParams

OPENAI_FIELDS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
EXTRA_FIELDS = (  # SGLang's extras on the OpenAI routes: sent only when a program sets them
    "top_k",
    "min_p",
    "repetition_penalty",
    "stop_token_ids",
    "ignore_eos",
    "regex",
)


class OpenAI(Backend):
    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        is_chat_model: bool = True,
        chat_template: str | None = None,
        timeout: float = 3600,
    ):
        """base_url: default $OPENAI_BASE_URL or https://api.openai.com/v1; api_key: default
        $OPENAI_API_KEY. chat_template (completion models): a template string or file for the
        roles; default plain `ROLE: content` lines."""
        self.model, self.is_chat_model = model, is_chat_model
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        self.client = JSONClient(base_url, api_key, timeout)
        self._template_source = chat_template

    def chat_template(self) -> ChatTemplate:
        source = self._template_source
        if self.is_chat_model or not source:
            return plain()
        if os.path.isfile(source):
            with open(source, encoding="utf-8") as f:
                source = f.read()
        return from_jinja(source)

    # --- requests -----------------------------------------------------------------------------
    def _body(self, prompt: Prompt, params: GenParams) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model}
        if params.max_new_tokens is not None:
            body["max_tokens"] = params.max_new_tokens
        if params.stop:
            body["stop"] = params.stop
        if params.min_new_tokens:
            body["min_tokens"] = params.min_new_tokens
        for name in (*OPENAI_FIELDS, *EXTRA_FIELDS):
            if getattr(params, name) is not None:
                body[name] = getattr(params, name)
        if self.is_chat_model:
            body["messages"] = prompt.messages
            if params.json_schema is not None:
                schema = json.loads(params.json_schema)
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": schema},
                }
            return "/chat/completions", body
        body["prompt"] = prompt.text
        if params.json_schema is not None:
            body["json_schema"] = params.json_schema
        return "/completions", body

    def generate(self, prompt: Prompt, params: GenParams) -> tuple[str, dict[str, Any]]:
        path, body = self._body(prompt, params)
        reply = self.client.post(path, body)
        choice = reply["choices"][0]
        text = choice["message"]["content"] if self.is_chat_model else choice["text"]
        return text or "", _meta(reply.get("usage"), choice.get("finish_reason"))

    def generate_stream(
        self, prompt: Prompt, params: GenParams
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        path, body = self._body(prompt, params)
        body.update(stream=True, stream_options={"include_usage": True})
        reason = None
        for event in self.client.post_sse(path, body):
            for choice in event.get("choices") or []:
                reason = choice.get("finish_reason") or reason
                if self.is_chat_model:
                    piece = (choice.get("delta") or {}).get("content") or ""
                else:
                    piece = choice.get("text") or ""
                if piece:
                    yield piece, _meta(None, reason)
            if event.get("usage"):
                yield "", _meta(event["usage"], reason)

    def score(self, prompt: Prompt, choices: list[str]) -> Scores:
        what = "the log-likelihood of prompt tokens (echo=true with logprobs on /completions)"
        if self.is_chat_model:
            raise FeatureUnavailable(
                f"select needs {what}, which chat models do not give: use a completion model "
                "(is_chat_model=False) on a server that has it, sgl.RuntimeEndpoint, or "
                "gen(..., regex='choice1|choice2')"
            )
        body = {
            "model": self.model,
            "prompt": [prompt.text + c for c in choices],
            "max_tokens": 0,
            "echo": True,
            "logprobs": 0,
            "temperature": 0,
        }
        try:
            reply = self.client.post("/completions", body)
        except HTTPError as e:
            raise FeatureUnavailable(
                f"select needs {what}; the server at {self.client.base_url} refused it "
                f"({e.message}): use sgl.RuntimeEndpoint, or gen(..., regex='a|b')"
            ) from e
        by_index = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
        cut = len(prompt.text)
        scored = []
        for choice in by_index:
            lp = choice.get("logprobs") or {}
            tokens, values, offsets = (
                lp.get("tokens"),
                lp.get("token_logprobs"),
                lp.get("text_offset"),
            )
            if not tokens or values is None or offsets is None:
                raise FeatureUnavailable(
                    f"select needs {what}; the server at {self.client.base_url} returned none"
                )
            scored.append(
                [
                    (v, None, t)
                    for t, v, o in zip(tokens, values, offsets)
                    if v is not None and o + len(t) > cut
                ]
            )
        return Scores(scored, [_meta(reply.get("usage"), None)])


def _meta(usage: dict[str, Any] | None, finish_reason: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"finish_reason": {"type": finish_reason} if finish_reason else None}
    if usage:
        details = usage.get("prompt_tokens_details") or {}
        meta.update(
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            cached_tokens=details.get("cached_tokens") or 0,
        )
    return meta
