"""Run the server: uvicorn with graceful shutdown (SIGTERM stops accepting, lets in-flight
requests finish for up to `GRACEFUL_S` seconds, aborts the rest, stops the scheduler, exits 0)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from importlib import import_module

import uvicorn

from sglang.engine.launcher import launch
from sglang.engine.preflight import bind_socket, check_model
from sglang.server_args import ServerArgs

GRACEFUL_S = 30


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, so the process would end with
    status 143; a server that shut down cleanly on request exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def terminable():
    """SIGTERM raises SystemExit while the model loads (uvicorn handles it only once serving),
    so the scheduler process is stopped rather than orphaned."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(args: ServerArgs) -> int:
    """Bind the port, check the model and device, load, then serve. A failed start raises
    StartupError (one line, with its exit code) before uvicorn runs."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.node_rank > 0:  # a node of ranks only: no HTTP server (engine/nodes.py)
        from sglang.engine.nodes import run_node

        with terminable():
            return run_node(args)
    sock = bind_socket(args.host, args.port)
    try:
        with terminable():
            args, _ = check_model(args)  # before the imports below, which take seconds (torch)
            # The routes (fastapi, pydantic: about a second) are imported once the scheduler
            # process is spawned, while it loads the model.
            launched = launch(args, while_loading=lambda: import_module("sglang.server.app"))
            from sglang.server.app import create_app

    except BaseException:
        sock.close()
        raise
    app = create_app(args, launched)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_S,
        timeout_keep_alive=5,
    )
    server = GracefulServer(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1
