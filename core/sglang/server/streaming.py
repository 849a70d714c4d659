"""Helpers every streaming route shares (native /generate and the OpenAI routes): merging the
result streams of a request's copies, the last result of a stream, server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from sglang.engine.records import GenerateResult


async def merged(
    streams: list[AsyncIterator[GenerateResult]],
) -> AsyncIterator[tuple[int, GenerateResult]]:
    """Interleave several result streams as (index, result), in arrival order; an error (a
    disconnect included) in any of them is raised here."""
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(i: int, stream: AsyncIterator[GenerateResult]) -> None:
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


async def collect(stream: AsyncIterator[GenerateResult]) -> GenerateResult:
    """The last (complete) result of a stream."""
    last = None
    async for chunk in stream:
        last = chunk
    return last


def sse(payload: dict | str) -> str:
    """One server-sent event: a JSON object, or a literal such as "[DONE]"."""
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"
