"""The server's listening socket (bound before the model loads, then handed to uvicorn) gives
connections with TCP_NODELAY. asyncio sets it only on sockets whose proto is TCP; without it,
Nagle's algorithm holds a stream's first SSE chunk behind the unacknowledged response headers
until the client's delayed ACK, 40 ms on Linux, which was most of a short prompt's TTFT."""

from __future__ import annotations

import asyncio
import socket

from sglang.engine.preflight import bind_socket


def test_accepted_connections_have_tcp_nodelay():
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    async def run() -> None:
        async def handle(reader, writer) -> None:
            s = writer.get_extra_info("socket")
            seen.append(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)  # as uvicorn serves sockets=
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(run())
    assert seen and seen[0] != 0
