"""The streaming routes' helpers: `started` asks each stream for its first result at once (the
request goes to the scheduler while the response headers are written), and `merged` of one
stream closes it when the consumer stops early (a client gone: the request is aborted)."""

from __future__ import annotations

import asyncio

from sglang.server.streaming import merged, started


def test_started_streams_run_before_they_are_read_and_close_when_left():
    log: list[str] = []

    async def stream(name: str):
        log.append(f"{name} sent")
        try:
            for i in range(3):
                yield i
                await asyncio.sleep(0)
        finally:
            log.append(f"{name} closed")

    async def run() -> list:
        streams = started([stream("a")])
        await asyncio.sleep(0)  # one loop turn, nothing read yet
        assert log == ["a sent"]
        got = []
        body = merged(streams)
        async for item in body:
            got.append(item)
            if len(got) == 2:
                break
        await body.aclose()
        return got

    assert asyncio.run(run()) == [(0, 0), (0, 1)]
    assert log == ["a sent", "a closed"]


def test_started_streams_merge_in_arrival_order_to_the_end():
    async def stream(values, delay):
        for v in values:
            await asyncio.sleep(delay)
            yield v

    async def run() -> list:
        body = merged(started([stream("ab", 0.001), stream("xyz", 0.0)]))
        return [item async for item in body]

    got = asyncio.run(run())
    assert sorted(got) == [(0, "a"), (0, "b"), (1, "x"), (1, "y"), (1, "z")]
    assert [v for i, v in got if i == 0] == ["a", "b"]
