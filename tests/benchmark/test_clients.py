"""Request functions against a scripted HTTP server: the SGLang /generate wire format (request
body, cumulative SSE chunks, meta_info counts, [DONE], error chunks), the OpenAI completions
and chat streams, and how timings are attributed to tokens."""

from __future__ import annotations

import asyncio
import json

import pytest
from sglang.benchmark import clients

web = pytest.importorskip("aiohttp.web", reason="aiohttp is not installed")


def sse(obj) -> bytes:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n".encode()


def sglang_chunk(text: str, ids: list[int], finish=None) -> dict:
    meta = {
        "id": "r",
        "finish_reason": finish,
        "prompt_tokens": 3,
        "completion_tokens": len(ids),
        "cached_tokens": 0,
    }
    return {"text": text, "output_ids": ids, "meta_info": meta}


async def serve(routes: dict, call):
    """Run `call(base_url)` against an app whose handlers send the scripted SSE events."""
    seen = []

    def handler(events, status=200):
        async def handle(request):
            seen.append(await request.json())
            if status != 200:
                return web.Response(status=status, text="bad request: max_new_tokens")
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for event in events:
                if isinstance(event, float):
                    await asyncio.sleep(event)
                else:
                    await response.write(sse(event))
            return response

        return handle

    app = web.Application()
    for path, spec in routes.items():
        app.router.add_post(path, handler(*spec))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with clients.make_session() as session:
            return await call(session, f"http://127.0.0.1:{port}"), seen
    finally:
        await runner.cleanup()


def run_one(routes, path, func, **kw):
    async def call(session, base):
        inp = clients.RequestInput(
            api_url=base + path, prompt="Hi there", prompt_len=3, output_len=4, model="m", **kw
        )
        return await func(session, inp)

    return asyncio.run(serve(routes, call))


def test_sglang_generate_stream():
    events = [
        0.02,
        sglang_chunk(" a", [5]),
        0.04,
        sglang_chunk(" a b c", [5, 6, 7]),  # two tokens in one chunk (stream_interval)
        0.02,
        sglang_chunk(" a b c d", [5, 6, 7, 8], {"type": "length", "length": 4}),
        "[DONE]",
    ]
    out, seen = run_one({"/generate": (events,)}, "/generate", clients.request_sglang)
    assert seen == [
        {
            "text": "Hi there",
            "sampling_params": {"temperature": 0.0, "max_new_tokens": 4, "ignore_eos": True},
            "stream": True,
        }
    ]
    assert out.success and out.error == ""
    assert out.generated_text == " a b c d" and out.output_len == 4
    assert out.ttft >= 0.02 and out.latency >= out.ttft + 0.06
    assert len(out.itl) == 3
    assert out.itl[0] == pytest.approx(out.itl[1])  # a two-token chunk's gap is split in two
    assert out.itl[0] >= 0.018 and out.itl[2] >= 0.018


def test_sglang_input_ids_extra_body_and_no_ignore_eos():
    events = [sglang_chunk("x", [9], {"type": "stop", "matched": 2}), "[DONE]"]
    out, seen = run_one(
        {"/generate": (events,)},
        "/generate",
        clients.request_sglang,
        prompt_ids=[1, 2, 3],
        ignore_eos=False,
        extra_body={"rid": "abc"},
    )
    assert out.success and out.output_len == 1 and out.itl == []
    body = seen[0]
    assert "text" not in body and body["input_ids"] == [1, 2, 3] and body["rid"] == "abc"
    assert body["sampling_params"]["ignore_eos"] is False


def test_sglang_errors():
    error = [sglang_chunk("x", [9]), {"error": {"message": "aborted"}}, "[DONE]"]
    out, _ = run_one({"/generate": (error,)}, "/generate", clients.request_sglang)
    assert not out.success and "aborted" in out.error
    cut = [sglang_chunk("x", [9])]  # no finish_reason, no [DONE]
    out, _ = run_one({"/generate": (cut,)}, "/generate", clients.request_sglang)
    assert not out.success and "finish_reason" in out.error
    out, _ = run_one({"/generate": ([], 400)}, "/generate", clients.request_sglang)
    assert not out.success and out.error.startswith("HTTP 400: bad request")


def test_openai_completions_stream_with_usage():
    def choice(text, finish=None):
        return {"choices": [{"index": 0, "text": text, "finish_reason": finish}]}

    events = [
        0.01,
        choice(" one"),
        0.01,
        choice(" two"),
        choice("", "length"),
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
        "[DONE]",
    ]
    out, seen = run_one(
        {"/v1/completions": (events,)}, "/v1/completions", clients.request_openai_completions
    )
    body = seen[0]
    assert body["prompt"] == "Hi there" and body["max_tokens"] == 4 and body["model"] == "m"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert out.success and out.generated_text == " one two" and out.output_len == 2
    assert len(out.itl) == 1


def test_openai_completions_without_usage_or_done():
    events = [{"choices": [{"text": "a", "finish_reason": None}]}]
    out, _ = run_one(
        {"/v1/completions": (events,)}, "/v1/completions", clients.request_openai_completions
    )
    assert not out.success  # an interrupted stream is not a completed request
    events = [{"choices": [{"text": "a", "finish_reason": "stop"}]}]
    out, _ = run_one(
        {"/v1/completions": (events,)}, "/v1/completions", clients.request_openai_completions
    )
    assert out.success and out.output_len is None  # counted later by re-tokenizing


def test_openai_chat_stream():
    events = [
        {"choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
        "[DONE]",
    ]
    out, seen = run_one(
        {"/v1/chat/completions": (events,)}, "/v1/chat/completions", clients.request_openai_chat
    )
    assert seen[0]["messages"] == [{"role": "user", "content": "Hi there"}]
    assert seen[0]["max_completion_tokens"] == 4
    assert out.success and out.generated_text == "Hello" and len(out.itl) == 1
