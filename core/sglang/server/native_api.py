"""SGLang's native routes: /generate, /health, /health_generate, /get_model_info (and
/model_info), /get_server_info (and /server_info), /flush_cache, /abort_request, /tokenize,
/detokenize. (/metrics, with --enable-metrics: sglang.server.metrics.)"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from sglang.benchmark.request_trace import mark
from sglang.sampling.params import SamplingParams
from sglang.server.errors import APIError
from sglang.server.openapi_bodies import generate_openapi
from sglang.server.protocol import AbortRequestBody, DetokenizeRequest, TokenizeRequest
from sglang.server.request_fields import check_generate_body
from sglang.server.state import MAX_N, ClientGone, state_of
from sglang.server.streaming import collect, merged, sse, started

router = APIRouter()


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise APIError(400, f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _all_ints(values: list) -> bool:
    return all(type(t) is int for t in values) or all(_is_int(t) for t in values)


def as_list(value: Any, n: int, name: str) -> list:
    if isinstance(value, list):
        if len(value) != n:
            raise APIError(400, f"{name} has {len(value)} entries for {n} prompts", name)
        return value
    return [value] * n


def int_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise APIError(400, f"{name} must be an integer, got {value!r}", name)
    return value


def nth_sample(params: SamplingParams, i: int) -> SamplingParams:
    """Sample i of n: n = 1, and its own seed when a seed is given (as the OpenAI routes do)."""
    if params.n == 1:  # i = 0: the parameters as they are
        return params
    seed = params.sampling_seed
    return dataclasses.replace(params, n=1, sampling_seed=seed + i if seed is not None else None)


@router.post("/generate", openapi_extra=generate_openapi())
async def generate(request: Request):
    mark("route_in")
    state = state_of(request)
    body = await json_body(request)
    check_generate_body(body)
    text, input_ids = body.get("text"), body.get("input_ids")
    if (text is None) == (input_ids is None):
        raise APIError(400, "give exactly one of text or input_ids")
    if text is not None:
        if not isinstance(text, (str, list)) or (
            isinstance(text, list) and not all(isinstance(t, str) for t in text)
        ):
            raise APIError(400, "text must be a string or a list of strings", "text")
        batch = isinstance(text, list)
        prompts = [state.encode(t) for t in (text if batch else [text])]
    else:
        if not isinstance(input_ids, list) or not input_ids:
            raise APIError(400, "input_ids must be a non-empty list", "input_ids")
        batch = isinstance(input_ids[0], list)
        prompts = input_ids if batch else [input_ids]
        if not all(isinstance(p, list) and _all_ints(p) for p in prompts):
            raise APIError(
                400, "input_ids must be a list of integers or of such lists", "input_ids"
            )
    sp_list = as_list(body.get("sampling_params") or {}, len(prompts), "sampling_params")
    stream = bool(body.get("stream", False))
    if stream and len(prompts) > 1:
        raise APIError(400, "stream takes a single prompt")
    kw = dict(
        return_logprob=bool(body.get("return_logprob", False)),
        logprob_start_len=int_field(body, "logprob_start_len"),
        top_logprobs_num=int_field(body, "top_logprobs_num") or 0,
        return_text_in_logprobs=bool(body.get("return_text_in_logprobs", False)),
        priority=int_field(body, "priority"),
    )
    rids = body.get("rid")
    rids = (
        as_list(rids, len(prompts), "rid")
        if rids is not None
        else [uuid.uuid4().hex for _ in prompts]
    )
    streams = []
    for ids, sp, rid in zip(prompts, sp_list, rids):
        if not isinstance(sp, dict):
            raise APIError(400, "sampling_params must be an object", "sampling_params")
        params = state.sampling_params(sp)
        ids = state.fit_prompt(list(ids), params.max_new_tokens)
        if not 1 <= params.n <= MAX_N:
            raise APIError(400, f"n must be in [1, {MAX_N}], got {params.n}", "n")
        if params.n > 1 and stream:
            raise APIError(400, "stream takes n = 1", "n")
        # SGLang's parallel sampling: n copies of the prompt, prompt-major in the answer
        for i in range(params.n):
            copy_rid = rid if params.n == 1 else f"{rid}-{i}"
            watch = None if stream else request
            streams.append(state.generate(watch, ids, nth_sample(params, i), rid=copy_rid, **kw))
        batch = batch or params.n > 1
    if stream:
        streams = started(streams)

        async def events():
            try:
                async for _, chunk in merged(streams):
                    data = sse(chunk.to_dict())
                    mark("sse_chunk")
                    yield data
            except ClientGone:
                return
            yield sse("[DONE]")

        mark("route_out")
        return StreamingResponse(events(), media_type="text/event-stream")
    try:
        results = await asyncio.gather(*(collect(s) for s in streams))
    except ClientGone:
        return Response(status_code=499)
    dicts = [r.to_dict() for r in results]
    return JSONResponse(dicts if batch else dicts[0])


@router.get("/health")
async def health(request: Request) -> Response:
    failure = state_of(request).manager.failure
    if failure is not None:
        raise APIError(503, str(failure))
    return Response(status_code=200)


@router.get("/health_generate")
async def health_generate(request: Request) -> Response:
    state = state_of(request)
    ids = state.encode("ping") if state.tokenizer is not None else [1]
    params = state.sampling_params({"max_new_tokens": 1, "temperature": 0})
    try:
        await asyncio.wait_for(collect(state.generate(None, ids, params)), timeout=60)
    except Exception as e:  # the engine is unhealthy, whatever the cause
        return JSONResponse({"error": {"message": f"generation failed: {e}"}}, status_code=503)
    return Response(status_code=200)


@router.get("/get_model_info")
@router.get("/model_info", operation_id="model_info")
async def get_model_info(request: Request):
    state = state_of(request)
    return {
        "model_path": state.args.model_path,
        "tokenizer_path": state.args.tokenizer_path or state.args.model_path,
        "served_model_name": state.model_name,
        "is_generation": True,
        "architecture": state.info.architecture,
        "context_length": state.context_len,
    }


@router.get("/get_server_info")
@router.get("/server_info", operation_id="server_info")
async def get_server_info(request: Request):
    state = state_of(request)
    stats = await state.refresh_scheduler_gauges()
    info = state.info.as_dict()
    settings = info.pop("server_args")
    return {**settings, **info, "scheduler": stats, "version": _version()}


@router.get("/flush_cache")
@router.post("/flush_cache", operation_id="flush_cache_post")
async def flush_cache(request: Request):
    reply = await state_of(request).manager.control("flush_cache")
    if not reply.ok:
        raise APIError(400, f"cache not flushed: {reply.payload.get('message')}")
    return Response("Cache flushed.", status_code=200)


@router.post("/abort_request")
async def abort_request(body: AbortRequestBody, request: Request):
    await state_of(request).manager.abort(body.rid)
    return Response(status_code=200)


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, request: Request):
    state = state_of(request)
    if isinstance(body.prompt, str):
        tokens = state.encode(body.prompt, body.add_special_tokens)
        return {"tokens": tokens, "count": len(tokens), "max_model_len": state.context_len}
    tokens = [state.encode(p, body.add_special_tokens) for p in body.prompt]
    return {"tokens": tokens, "count": [len(t) for t in tokens], "max_model_len": state.context_len}


@router.post("/detokenize")
async def detokenize(body: DetokenizeRequest, request: Request):
    state = state_of(request)
    if state.tokenizer is None:
        raise APIError(400, "the server runs with --skip-tokenizer-init")
    vocab = state.info.vocab_size or len(state.tokenizer)
    nested = bool(body.tokens) and isinstance(body.tokens[0], list)
    seqs = body.tokens if nested else [body.tokens]
    for seq in seqs:
        if any(not 0 <= t < vocab for t in seq):
            raise APIError(400, f"token ids must be in [0, {vocab})", "tokens")
    texts = [state.tokenizer.decode(seq) for seq in seqs]
    return {"text": texts if nested else texts[0]}


def _version() -> str:
    from sglang.version import __version__

    return __version__
