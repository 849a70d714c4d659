"""The OpenAI route /v1/completions, streamed and whole."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from sglang.engine.records import GenerateResult
from sglang.server.errors import APIError
from sglang.server.openai_common import check_common, sampling_fields, seeded, token_text, usage
from sglang.server.protocol import CompletionRequest
from sglang.server.state import ClientGone, ServerState, state_of
from sglang.server.streaming import collect, merged, sse, started

router = APIRouter()


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
    state: ServerState, r: GenerateResult, start: int, end: int | None, offset: int
) -> dict | None:
    if r.output_token_logprobs is None:
        return None
    tokens, token_logprobs, tops, offsets = [], [], [], []
    pos = offset
    for (lp, tid, text), top in zip(
        r.output_token_logprobs[start:end], r.output_top_logprobs[start:end]
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
        return_logprob=req.logprobs is not None,
        top_logprobs_num=top,
        return_text_in_logprobs=True,
        priority=req.priority,
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
        streams = started(streams)
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
            "text": r.text,
            "logprobs": completion_logprobs(state, r, 0, None, 0)
            if req.logprobs is not None
            else None,
            "finish_reason": r.finish_type,
        }
        for i, r in enumerate(results)
    ]
    return JSONResponse(
        {
            "id": rid,
            "object": "text_completion",
            "created": created,
            "model": state.model_name,
            "choices": choices,
            "usage": usage(prompt_tokens, results),
        }
    )


async def completion_stream(state, rid, created, prompt_tokens, streams, include_usage):
    base = {"id": rid, "object": "text_completion", "created": created, "model": state.model_name}
    sent_text = [0] * len(streams)
    sent_tokens = [0] * len(streams)
    finals: list[GenerateResult | None] = [None] * len(streams)
    try:
        async for i, chunk in merged(streams):
            text = chunk.text[sent_text[i] :]
            reason = chunk.finish_type
            if not text and reason is None:
                continue
            n = len(chunk.output_ids)
            logprobs = completion_logprobs(state, chunk, sent_tokens[i], n, sent_text[i])
            sent_text[i], sent_tokens[i] = len(chunk.text), n
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
        yield sse({**base, "choices": [], "usage": usage(prompt_tokens, finals)})
    yield sse("[DONE]")
