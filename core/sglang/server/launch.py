"""Run the server: uvicorn with graceful shutdown (SIGTERM stops accepting, lets in-flight
requests finish for up to `GRACEFUL_S` seconds, aborts the rest, stops the scheduler, exits 0)."""

from __future__ import annotations

import logging

import uvicorn

from sglang.server.app import create_app
from sglang.server_args import ServerArgs

GRACEFUL_S = 30


def serve(args: ServerArgs) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(args)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_S,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
