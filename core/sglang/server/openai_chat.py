"""The OpenAI route /v1/chat/completions, streamed and whole."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from sglang.engine.records import GenerateResult
from sglang.server.chat_tools import ChoiceOutput, plan_tools, template_tool_calls
from sglang.server.errors import APIError
from sglang.server.openai_common import (
    check_common,
    sampling_fields,
    seeded,
    token_text,
    usage,
)
from sglang.server.protocol import ROLES, ChatCompletionRequest, ContentPart
from sglang.server.response_format import constrained_fields
from sglang.server.state import ClientGone, ServerState, state_of
from sglang.server.streaming import collect, merged, sse, started

router = APIRouter()


def chat_messages(req: ChatCompletionRequest) -> list[dict[str, Any]]:
    if not req.messages:
        raise APIError(400, "messages must be a non-empty list", "messages")
    out = []
    for i, m in enumerate(req.messages):
        if m.role not in ROLES:
            raise APIError(
                400, f"messages[{i}].role {m.role!r} is not one of {', '.join(ROLES)}", "messages"
            )
        content = m.content
        if isinstance(content, list):
            content = "".join(text_part(p, i, j) for j, p in enumerate(content))
        message: dict[str, Any] = {"role": m.role, "content": content or ""}
        extra = m.model_extra or {}
        if m.name is not None:
            message["name"] = m.name
        if extra.get("tool_calls") is not None:
            message["tool_calls"] = template_tool_calls(extra["tool_calls"], i)
        for key in ("tool_call_id", "reasoning_content"):
            if extra.get(key) is not None:
                message[key] = extra[key]
        out.append(message)
    return out


def text_part(part: ContentPart, i: int, j: int) -> str:
    """The text of a message content part; a 400 naming any other part type (image_url,
    input_audio, file, ...): this server serves text models."""
    where = f"messages[{i}].content[{j}]"
    if part.type != "text":
        raise APIError(
            400,
            f"{where} has type {part.type!r}; this server serves text models and takes only "
            "text parts",
            "messages",
        )
    if not isinstance(part.text, str):
        raise APIError(400, f"{where} is a text part without text", "messages")
    return part.text


def chat_logprobs(state: ServerState, r: GenerateResult, start: int, end: int) -> dict | None:
    if r.output_token_logprobs is None:
        return None
    content = []
    tokens = r.output_token_logprobs[start:end]
    tops = r.output_top_logprobs[start:end]
    for (lp, tid, text), top in zip(tokens, tops):
        text = token_text(state, tid, text)
        content.append(
            {
                "token": text,
                "logprob": lp,
                "bytes": list(text.encode()),
                "top_logprobs": [
                    {
                        "token": token_text(state, t, t_text),
                        "logprob": v,
                        "bytes": list(token_text(state, t, t_text).encode()),
                    }
                    for v, t, t_text in top
                ],
            }
        )
    return {"content": content}


@router.post("/v1/chat/completions")
async def chat_completions(req: ChatCompletionRequest, request: Request):
    state = state_of(request)
    max_tokens = (
        req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    )
    check_common(state, req, max_tokens, "/v1/chat/completions")
    plan = plan_tools(
        req.tools,
        req.tool_choice,
        req.parallel_tool_calls,
        state.tool_call_parser,
        state.args.grammar_backend,
    )
    template_kwargs = dict(req.chat_template_kwargs or {})
    if req.reasoning_effort is not None:
        if "reasoning_effort" not in (state.chat_template or ""):
            raise APIError(
                400,
                "reasoning_effort has no effect on this model: its chat template takes none",
                "reasoning_effort",
            )
        template_kwargs.setdefault("reasoning_effort", req.reasoning_effort)
    if req.continue_final_message:
        if req.messages[-1].role != "assistant":
            raise APIError(
                400,
                "continue_final_message needs the last message to be the assistant's",
                "continue_final_message",
            )
        template_kwargs["continue_final_message"] = True
    try:
        ids = state.render_chat(chat_messages(req), tools=plan.tools, **template_kwargs)
    except ValueError as e:  # transformers: the final message is not found in the render
        msg = f"the chat template cannot continue the messages: {e}"
        raise APIError(400, msg, "messages") from None
    ids = state.fit_prompt(ids, max_tokens)
    fields = sampling_fields(
        req, max_tokens if max_tokens is not None else state.context_len - len(ids)
    )
    answer = constrained_fields(fields, req.response_format)
    if plan.constraint is not None:
        given = [k for k in ("json_schema", "regex", "ebnf") if fields.get(k) is not None]
        if answer:
            given.insert(0, "response_format")
        if given:
            raise APIError(
                400,
                f"tool_choice {tool_choice_text(req.tool_choice)} constrains the output; it "
                f"cannot be combined with {', '.join(given)}",
                "tool_choice",
            )
        answer = plan.constraint
    fields.update(answer)
    if plan.parser is not None and plan.parser.needs_special_tokens:
        fields["skip_special_tokens"] = False  # the format's markers are special tokens
    reasoning = state.reasoning_parser if req.separate_reasoning else None

    def output() -> ChoiceOutput:
        return ChoiceOutput(reasoning, plan, bool(answer), req.stream_reasoning)

    params = [state.sampling_params(seeded(fields, i)) for i in range(req.n)]
    top = (req.top_logprobs or 0) if req.logprobs else 0
    kw = dict(
        return_logprob=req.logprobs,
        top_logprobs_num=top,
        return_text_in_logprobs=True,
        priority=req.priority,
    )
    rid = req.rid or f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    # Streaming responses are cancelled by Starlette when the client goes; others poll for it.
    watch = None if req.stream else request
    streams = [
        state.generate(watch, ids, p, rid=rid if req.n == 1 else f"{rid}-{i}", **kw)
        for i, p in enumerate(params)
    ]
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        outputs = [output() for _ in streams]
        streams = started(streams)
        return StreamingResponse(
            chat_stream(state, rid, created, len(ids), streams, outputs, include_usage),
            media_type="text/event-stream",
        )
    try:
        results = await asyncio.gather(*(collect(s) for s in streams))
    except ClientGone:
        return Response(status_code=499)
    choices = []
    for i, r in enumerate(results):
        out = output()
        choices.append(
            {
                "index": i,
                "message": out.message(r.text),
                "logprobs": chat_logprobs(state, r, 0, None) if req.logprobs else None,
                "finish_reason": out.finish_reason(r.finish_type),
            }
        )
    return JSONResponse(
        {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": state.model_name,
            "choices": choices,
            "usage": usage(len(ids), results),
        }
    )


def tool_choice_text(choice: Any) -> str:
    return choice if isinstance(choice, str) else repr(choice["function"]["name"])


async def chat_stream(
    state, rid, created, prompt_len, streams, outputs: list[ChoiceOutput], include_usage
) -> AsyncIterator[str]:
    base = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": state.model_name,
    }
    sent_text = [0] * len(streams)
    sent_tokens = [0] * len(streams)
    finals: list[GenerateResult | None] = [None] * len(streams)
    for i in range(len(streams)):
        delta = {"role": "assistant", "content": ""}
        yield sse(
            {
                **base,
                "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}],
            }
        )
    try:
        async for i, chunk in merged(streams):
            text = chunk.text[sent_text[i] :]
            sent_text[i] = len(chunk.text)
            n = len(chunk.output_ids)
            reason = chunk.finish_type
            delta = outputs[i].feed(text) if text else {}
            if reason is not None:
                for key, value in outputs[i].finish().items():
                    delta[key] = delta.get(key, type(value)()) + value
                reason = outputs[i].finish_reason(reason)
            if not delta and reason is None:
                continue  # held back (a tag or call may be starting); its logprobs come later
            logprobs = chat_logprobs(state, chunk, sent_tokens[i], n)
            sent_tokens[i] = n
            choice = {"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": reason}
            yield sse({**base, "choices": [choice]})
            if reason is not None:
                finals[i] = chunk
    except ClientGone:
        return
    if include_usage and all(finals):
        yield sse({**base, "choices": [], "usage": usage(prompt_len, finals)})
    yield sse("[DONE]")
