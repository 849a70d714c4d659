"""One benchmark request against a server API (`bench_serving --backend`), timed on the client.

- sglang: native `POST /generate` {"text" | "input_ids", "sampling_params", "stream"}, answered
  (streaming) by SSE lines `data: {json}` with the cumulative "text" and "output_ids" and a
  "meta_info" holding "completion_tokens", "prompt_tokens" and "finish_reason", then
  `data: [DONE]`; errors arrive as a `{"error": ...}` chunk.
- openai: `POST /v1/completions` {"model", "prompt", "max_tokens", "stream"}; delta text per
  chunk, `usage` at the end where the server sends it (`stream_options.include_usage`).
- openai-chat: `POST /v1/chat/completions`, the prompt as one user message.
All send temperature 0 and `ignore_eos` (unless --disable-ignore-eos); servers that do not know
`ignore_eos` (llama.cpp's) ignore it and may stop early at EOS, which the output counts show.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sglang.benchmark.metrics import RequestOutput

REQUEST_TIMEOUT_S = 6 * 3600
READ_BUFSIZE = 10 * 1024 * 1024  # SSE lines of long cumulative texts


@dataclass
class RequestInput:
    api_url: str
    prompt: str
    prompt_len: int
    output_len: int
    model: str = ""
    prompt_ids: list[int] | None = None  # sent as input_ids (sglang backend, --tokenize-prompt)
    ignore_eos: bool = True
    stream: bool = True
    extra_body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def make_session():
    """An aiohttp session without connection limits (every request may be in flight)."""
    try:
        import aiohttp
    except ImportError as exc:  # the engine itself does not need aiohttp
        raise ImportError("bench_serving needs aiohttp: pip install aiohttp") from exc
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        read_bufsize=READ_BUFSIZE,
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
    )


async def sse_data(response) -> AsyncIterator[str]:
    """The payloads of an SSE stream's `data:` lines, "[DONE]" included."""
    async for raw in response.content:
        text = raw.decode("utf-8").strip()
        if text.startswith("data:"):
            yield text[5:].lstrip()


class _Timer:
    """First-output and inter-chunk times of one request. A chunk carrying k new tokens adds
    k gaps of (gap / k), as SGLang spreads them; k is 1 where the count is unknown."""

    def __init__(self, out: RequestOutput) -> None:
        self.out = out
        self.start = out.start_time = time.perf_counter()
        self.last = self.start

    def chunk(self, new_tokens: int = 1) -> None:
        now = time.perf_counter()
        if not self.out.ttft:
            self.out.ttft = now - self.start
        elif new_tokens > 0:
            self.out.itl.extend([(now - self.last) / new_tokens] * new_tokens)
        self.last = now

    def finish(self) -> None:
        self.out.latency = time.perf_counter() - self.start
        if not self.out.ttft:  # no output chunk (non-streaming, or nothing generated)
            self.out.ttft = self.out.latency


async def _failed(response) -> str:
    body = await response.text()
    return f"HTTP {response.status}: {body[:500]}"


async def request_sglang(session, inp: RequestInput) -> RequestOutput:
    payload: dict[str, Any] = {
        "sampling_params": {
            "temperature": 0.0,
            "max_new_tokens": inp.output_len,
            "ignore_eos": inp.ignore_eos,
        },
        "stream": inp.stream,
        **inp.extra_body,
    }
    if inp.prompt_ids is not None:
        payload["input_ids"] = inp.prompt_ids
    else:
        payload["text"] = inp.prompt
    out = RequestOutput(prompt_len=inp.prompt_len)
    timer = _Timer(out)
    try:
        async with session.post(inp.api_url, json=payload, headers=inp.headers) as response:
            if response.status != 200:
                out.error = await _failed(response)
                return out
            if not inp.stream:
                data = await response.json()
                out.generated_text = data.get("text", "")
                out.output_len = data.get("meta_info", {}).get("completion_tokens")
                timer.finish()
                out.success = True
                return out
            done, seen = False, 0
            async for data in sse_data(response):
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    out.error = json.dumps(chunk["error"])
                    return out
                meta = chunk.get("meta_info") or {}
                count = meta.get("completion_tokens")
                if count is None:
                    count = len(chunk.get("output_ids") or [])
                if count > seen:
                    timer.chunk(count - seen)
                    seen = count
                out.generated_text = chunk.get("text", out.generated_text)
                out.output_len = count
                done = done or meta.get("finish_reason") is not None
            timer.finish()
            out.success = done
            if not done:
                out.error = "the stream ended without a finish_reason"
    except Exception:
        out.error = traceback.format_exc()
    return out


async def _openai_stream(session, inp: RequestInput, payload: dict, delta) -> RequestOutput:
    out = RequestOutput(prompt_len=inp.prompt_len)
    timer = _Timer(out)
    try:
        async with session.post(inp.api_url, json=payload, headers=inp.headers) as response:
            if response.status != 200:
                out.error = await _failed(response)
                return out
            if not inp.stream:
                data = await response.json()
                out.generated_text = delta(data["choices"][0], stream=False) or ""
                out.output_len = (data.get("usage") or {}).get("completion_tokens")
                timer.finish()
                out.success = True
                return out
            texts, done = [], False
            async for data in sse_data(response):
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    out.error = json.dumps(chunk["error"])
                    return out
                choices = chunk.get("choices") or []
                text = delta(choices[0], stream=True) if choices else None
                if text:
                    timer.chunk()
                    texts.append(text)
                done = done or any(c.get("finish_reason") for c in choices)
                usage = chunk.get("usage")
                if usage and usage.get("completion_tokens") is not None:
                    out.output_len = usage["completion_tokens"]
            timer.finish()
            out.generated_text = "".join(texts)
            out.success = done
            if not done:
                out.error = "the stream ended without a finish_reason or [DONE]"
    except Exception:
        out.error = traceback.format_exc()
    return out


async def request_openai_completions(session, inp: RequestInput) -> RequestOutput:
    payload = {
        "model": inp.model,
        "prompt": inp.prompt_ids if inp.prompt_ids is not None else inp.prompt,
        "temperature": 0.0,
        "best_of": 1,
        "max_tokens": inp.output_len,
        "stream": inp.stream,
        "ignore_eos": inp.ignore_eos,
        **({"stream_options": {"include_usage": True}} if inp.stream else {}),
        **inp.extra_body,
    }

    def text(choice: dict, stream: bool) -> str | None:
        return choice.get("text")

    return await _openai_stream(session, inp, payload, text)


async def request_openai_chat(session, inp: RequestInput) -> RequestOutput:
    payload = {
        "model": inp.model,
        "messages": [{"role": "user", "content": inp.prompt}],
        "temperature": 0.0,
        "max_completion_tokens": inp.output_len,
        "max_tokens": inp.output_len,  # for servers that predate max_completion_tokens
        "stream": inp.stream,
        "ignore_eos": inp.ignore_eos,
        **({"stream_options": {"include_usage": True}} if inp.stream else {}),
        **inp.extra_body,
    }

    def text(choice: dict, stream: bool) -> str | None:
        return (choice.get("delta" if stream else "message") or {}).get("content")

    return await _openai_stream(session, inp, payload, text)


RequestFunc = Callable[[Any, RequestInput], Awaitable[RequestOutput]]

# --backend -> (path under the base URL, request function)
BACKENDS: dict[str, tuple[str, RequestFunc]] = {
    "sglang": ("/generate", request_sglang),
    "openai": ("/v1/completions", request_openai_completions),
    "openai-chat": ("/v1/chat/completions", request_openai_chat),
}


async def served_model(session, base_url: str, headers: dict[str, str]) -> str | None:
    """The first model id `GET /v1/models` lists, None when the server does not answer it."""
    try:
        async with session.get(f"{base_url}/v1/models", headers=headers) as response:
            if response.status != 200:
                return None
            data = (await response.json()).get("data") or []
            return data[0]["id"] if data else None
    except Exception:
        return None
