"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions, /v1/models."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from sglang.server.chat_tools import ChoiceOutput, plan_tools, template_tool_calls
from sglang.server.errors import APIError
from sglang.server.protocol import (
    ROLES,
    ChatCompletionRequest,
    CompletionRequest,
    ContentPart,
    SamplingFields,
)
from sglang.server.request_fields import (
    OPENAI_INFORMATIONAL,
    OPENAI_REFUSED,
    refuse_unknown,
    refuse_unserved,
)
from sglang.server.response_format import constrained_fields
from sglang.server.state import ClientGone, ServerState

router = APIRouter()
MAX_N = 128  # OpenAI's bound; each choice is a request of its own


def state_of(request: Request) -> ServerState:
    return request.app.state.server


# --- shared ----------------------------------------------------------------------------------
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


def usage(prompt_tokens: int, results: list[dict], cached: int) -> dict[str, Any]:
    completion = sum(r["meta_info"]["completion_tokens"] for r in results)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def finish_reason(meta: dict) -> str | None:
    reason = meta.get("finish_reason")
    return None if reason is None else reason["type"]


def token_text(state: ServerState, token_id: int, text: str | None = None) -> str:
    """A logprob tuple's text, or the token decoded alone (its id without a tokenizer)."""
    if text is not None:
        return text
    return state.tokenizer.decode([token_id]) if state.tokenizer is not None else str(token_id)


async def merged(streams: list[AsyncIterator[dict]]) -> AsyncIterator[tuple[int, dict]]:
    """Interleave several chunk streams as (index, chunk), in arrival order."""
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(i: int, stream: AsyncIterator[dict]) -> None:
        try:
            async for chunk in stream:
                await queue.put((i, chunk))
        except BaseException as e:  # surface errors (and disconnects) to the consumer
            await queue.put((i, e))
        finally:
            await queue.put((i, done))

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
    remaining = len(tasks)
    try:
        while remaining:
            i, item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield i, item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def collect(stream: AsyncIterator[dict]) -> dict:
    last = None
    async for chunk in stream:
        last = chunk
    return last


def sse(payload: dict | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


def seeded(fields: dict, i: int) -> dict:
    """Choice i of n: its own seed when a seed is given, so the choices differ reproducibly."""
    if i and fields.get("sampling_seed") is not None:
        return {**fields, "sampling_seed": fields["sampling_seed"] + i}
    return fields


# --- chat ------------------------------------------------------------------------------------
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


def chat_logprobs(state: ServerState, meta: dict, start: int, end: int) -> dict | None:
    if "output_token_logprobs" not in meta:
        return None
    content = []
    tokens = meta["output_token_logprobs"][start:end]
    tops = meta["output_top_logprobs"][start:end]
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
    kw = dict(return_logprob=req.logprobs, top_logprobs_num=top, return_text_in_logprobs=True)
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
        meta = r["meta_info"]
        out = output()
        choices.append(
            {
                "index": i,
                "message": out.message(r["text"]),
                "logprobs": chat_logprobs(state, meta, 0, None) if req.logprobs else None,
                "finish_reason": out.finish_reason(finish_reason(meta)),
            }
        )
    cached = max(r["meta_info"]["cached_tokens"] for r in results)
    return JSONResponse(
        {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": state.model_name,
            "choices": choices,
            "usage": usage(len(ids), results, cached),
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
    finals: list[dict | None] = [None] * len(streams)
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
            meta = chunk["meta_info"]
            text = chunk["text"][sent_text[i] :]
            sent_text[i] = len(chunk["text"])
            n = len(chunk["output_ids"])
            reason = finish_reason(meta)
            delta = outputs[i].feed(text) if text else {}
            if reason is not None:
                for key, value in outputs[i].finish().items():
                    delta[key] = delta.get(key, type(value)()) + value
                reason = outputs[i].finish_reason(reason)
            if not delta and reason is None:
                continue  # held back (a tag or call may be starting); its logprobs come later
            logprobs = chat_logprobs(state, meta, sent_tokens[i], n)
            sent_tokens[i] = n
            choice = {"index": i, "delta": delta, "logprobs": logprobs, "finish_reason": reason}
            yield sse({**base, "choices": [choice]})
            if reason is not None:
                finals[i] = chunk
    except ClientGone:
        return
    if include_usage and all(finals):
        cached = max(f["meta_info"]["cached_tokens"] for f in finals)
        yield sse({**base, "choices": [], "usage": usage(prompt_len, finals, cached)})
    yield sse("[DONE]")


# --- completions -----------------------------------------------------------------------------
def completion_prompts(state: ServerState, prompt: Any) -> list[list[int]]:
    if isinstance(prompt, str):
        return [state.encode(prompt)]
    if not prompt:
        raise APIError(400, "prompt must not be empty", "prompt")
    if all(isinstance(p, int) for p in prompt):
        return [list(prompt)]
    if all(isinstance(p, str) for p in prompt):
        return [state.encode(p) for p in prompt]
    if all(isinstance(p, list) for p in prompt):
        return [list(p) for p in prompt]
    raise APIError(400, "prompt must be a string, a list of strings or token id lists", "prompt")


def completion_logprobs(
    state: ServerState, meta: dict, start: int, end: int | None, offset: int
) -> dict | None:
    if "output_token_logprobs" not in meta:
        return None
    tokens, token_logprobs, tops, offsets = [], [], [], []
    pos = offset
    for (lp, tid, text), top in zip(
        meta["output_token_logprobs"][start:end], meta["output_top_logprobs"][start:end]
    ):
        text = token_text(state, tid, text)
        tokens.append(text)
        token_logprobs.append(lp)
        tops.append({token_text(state, t, t_text): v for v, t, t_text in top} if top else None)
        offsets.append(pos)
        pos += len(text)
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": tops,
        "text_offset": offsets,
    }


@router.post("/v1/completions")
async def completions(req: CompletionRequest, request: Request):
    state = state_of(request)
    check_common(state, req, req.max_tokens, "/v1/completions")
    if req.echo:
        raise APIError(400, "echo is not supported", "echo")
    if req.suffix:
        raise APIError(400, "suffix is not supported (no fill-in-the-middle)", "suffix")
    if req.best_of is not None and req.best_of != req.n:
        raise APIError(
            400,
            f"best_of must equal n when given (no server-side choice among samples), "
            f"got best_of={req.best_of}, n={req.n}",
            "best_of",
        )
    prompts = [
        state.fit_prompt(ids, req.max_tokens) for ids in completion_prompts(state, req.prompt)
    ]
    max_tokens = req.max_tokens if req.max_tokens is not None else 16  # OpenAI's default
    fields = sampling_fields(req, max_tokens)
    top = req.logprobs or 0
    kw = dict(
        return_logprob=req.logprobs is not None, top_logprobs_num=top, return_text_in_logprobs=True
    )
    rid = req.rid or f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    streams = []
    for pi, ids in enumerate(prompts):
        for j in range(req.n):
            params = state.sampling_params(seeded(fields, j))
            k = pi * req.n + j
            watch = None if req.stream else request
            streams.append(state.generate(watch, ids, params, rid=f"{rid}-{k}", **kw))
    prompt_tokens = sum(len(p) for p in prompts)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(
            completion_stream(state, rid, created, prompt_tokens, streams, include_usage),
            media_type="text/event-stream",
        )
    try:
        results = await asyncio.gather(*(collect(s) for s in streams))
    except ClientGone:
        return Response(status_code=499)
    choices = [
        {
            "index": i,
            "text": r["text"],
            "logprobs": completion_logprobs(state, r["meta_info"], 0, None, 0)
            if req.logprobs is not None
            else None,
            "finish_reason": finish_reason(r["meta_info"]),
        }
        for i, r in enumerate(results)
    ]
    cached = max(r["meta_info"]["cached_tokens"] for r in results)
    return JSONResponse(
        {
            "id": rid,
            "object": "text_completion",
            "created": created,
            "model": state.model_name,
            "choices": choices,
            "usage": usage(prompt_tokens, results, cached),
        }
    )


async def completion_stream(state, rid, created, prompt_tokens, streams, include_usage):
    base = {"id": rid, "object": "text_completion", "created": created, "model": state.model_name}
    sent_text = [0] * len(streams)
    sent_tokens = [0] * len(streams)
    finals: list[dict | None] = [None] * len(streams)
    try:
        async for i, chunk in merged(streams):
            meta = chunk["meta_info"]
            text = chunk["text"][sent_text[i] :]
            reason = finish_reason(meta)
            if not text and reason is None:
                continue
            n = len(chunk["output_ids"])
            logprobs = completion_logprobs(state, meta, sent_tokens[i], n, sent_text[i])
            sent_text[i], sent_tokens[i] = len(chunk["text"]), n
            yield sse(
                {
                    **base,
                    "choices": [
                        {"index": i, "text": text, "logprobs": logprobs, "finish_reason": reason}
                    ],
                }
            )
            if reason is not None:
                finals[i] = chunk
    except ClientGone:
        return
    if include_usage and all(finals):
        cached = max(f["meta_info"]["cached_tokens"] for f in finals)
        yield sse({**base, "choices": [], "usage": usage(prompt_tokens, finals, cached)})
    yield sse("[DONE]")


# --- models ----------------------------------------------------------------------------------
@router.get("/v1/models")
async def models(request: Request):
    state = state_of(request)
    return {
        "object": "list",
        "data": [
            {
                "id": state.model_name,
                "object": "model",
                "created": int(state.started),
                "owned_by": "sglang",
                "root": state.args.model_path,
                "max_model_len": state.context_len,
            }
        ],
    }
