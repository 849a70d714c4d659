"""Helpers every streaming route shares (native /generate and the OpenAI routes): a request's
results whose request is sent on demand, merging the result streams of a request's copies, the
last result of a stream, server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from sglang.engine.records import GenerateResult


class Submission:
    """A request's results as an async iterator. `submit()` sends the request to the scheduler
    now, synchronously (a check that fails raises there); otherwise it goes when the results
    are first read."""

    def __init__(self, submit: Callable[[], AsyncIterator[GenerateResult]]) -> None:
        self._submit = submit
        self._results: AsyncIterator[GenerateResult] | None = None

    def submit(self) -> AsyncIterator[GenerateResult]:
        if self._results is None:
            self._results = self._submit()
        return self._results

    def __aiter__(self) -> Submission:
        return self

    def __anext__(self):
        return self.submit().__anext__()

    async def aclose(self) -> None:
        if self._results is not None:
            await self._results.aclose()


async def merged(
    streams: list[AsyncIterator[GenerateResult]],
) -> AsyncIterator[tuple[int, GenerateResult]]:
    """Interleave several result streams as (index, result), in arrival order; an error (a
    disconnect included) in any of them is raised here."""
    if len(streams) == 1:  # read in place: no task and queue hop per chunk
        try:
            async for chunk in streams[0]:
                yield 0, chunk
        finally:
            await streams[0].aclose()
        return
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


def started(streams: list[AsyncIterator[GenerateResult]]) -> list[AsyncIterator[GenerateResult]]:
    """The streams, each with its first result already asked for: a Submission's request goes
    to the scheduler now, before the response is made (another stream's, on the loop's next
    turn), rather than once the response body is first read (a streaming route's time to first
    token). Call it when nothing else can fail before the response: a stream never read
    still runs to its end (its request is not aborted)."""
    return [_started(s) for s in streams]


def _started(stream: AsyncIterator[GenerateResult]) -> AsyncIterator[GenerateResult]:
    if isinstance(stream, Submission):
        stream = stream.submit()  # sent now; a failed check raises here, in the route
    first = asyncio.ensure_future(stream.__anext__())

    async def rest() -> AsyncIterator[GenerateResult]:
        try:
            try:
                item = await first
            except StopAsyncIteration:
                return
            yield item
            async for item in stream:
                yield item
        finally:
            if not first.done():
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
            await stream.aclose()

    return rest()


async def collect(stream: AsyncIterator[GenerateResult]) -> GenerateResult:
    """The last (complete) result of a stream."""
    last = None
    async for chunk in stream:
        last = chunk
    return last


def sse(payload: dict | str) -> str:
    """One server-sent event: a JSON object, or a literal such as "[DONE]"."""
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"
