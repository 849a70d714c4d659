"""The FastAPI application: lifespan (scheduler process + frontend), auth, error mapping."""

from __future__ import annotations

import atexit
import gc
import logging
import os
import signal
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from sglang.benchmark.request_trace import mark
from sglang.engine.launcher import Launched, launch, stop_scheduler
from sglang.engine.preflight import DEFAULT_MODEL_NAME  # noqa: F401 (its old home)
from sglang.engine.tokenizer_manager import SchedulerGone
from sglang.server import metrics, native_api, openai_api
from sglang.server.errors import APIError, error_response
from sglang.server.state import ServerState
from sglang.server_args import ServerArgs

logger = logging.getLogger(__name__)

OPEN_ROUTES = ("/health",)


def stop_server(message: str) -> None:
    logger.error("%s: stopping the server", message)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown, then the lifespan's


def create_app(args: ServerArgs, launched: Launched | None = None) -> FastAPI:
    """The app around a scheduler that `launch(args)` started (`sglang serve` launches it
    before uvicorn runs, so a failed start is one line and no lifespan traceback); without
    one, the lifespan launches it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        started = launched or launch(args)
        handle, info, settings = started.handle, started.info, started.args
        manager = started.tokenizer_manager()
        manager.start()
        # Requests fail with 503 if the scheduler dies, never hang. A rank of a multi-rank
        # scheduler that dies leaves the others stuck: the server reports it and stops.
        manager.watch(handle.proc, on_exit=stop_server if len(handle.procs) > 1 else None)
        state = ServerState(settings, manager, info, started.source)
        state.sampling_defaults = started.sampling_defaults
        app.state.server = state
        # The imports, tokenizer and routes (~300k objects) out of the collector's reach, as
        # the scheduler does: a full collection walked them all, a pause of 0.1-0.7 s that
        # stalled every stream and request of this process at once (the TTFT tail).
        gc.collect()
        gc.freeze()
        atexit.register(gc.unfreeze)
        logger.info(
            "serving %s on %s (%s) at http://%s:%d",
            state.model_name,
            info.backend,
            info.device,
            settings.host,
            settings.port,
        )
        try:
            yield
        finally:
            await manager.send_shutdown()
            stop_scheduler(handle)
            await manager.aclose()
            logger.info("shut down")

    app = FastAPI(title="sglang", lifespan=lifespan)
    # /metrics first: it answers 404 unless --enable-metrics (as SGLang does)
    app.include_router(metrics.router(args.enable_metrics))
    app.include_router(openai_api.router)
    app.include_router(native_api.router)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return error_response(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        """Starlette's own errors (an unreadable body, an unknown path or method) in the same
        OpenAI shape as ours, not {"detail": ...}."""
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(SchedulerGone)
    async def scheduler_gone(request: Request, exc: SchedulerGone):
        return error_response(503, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            if err.get("type") == "json_invalid":
                return error_response(400, f"the request body is not valid JSON: {err.get('msg')}")
            problems.append(f"{where or 'body'}: {err.get('msg')}")
        param = None
        if exc.errors():
            loc = [p for p in exc.errors()[0].get("loc", ()) if p != "body"]
            param = str(loc[0]) if loc else None
        return error_response(400, "; ".join(problems) or "invalid request", param)

    app.add_middleware(GuardMiddleware, api_key=args.api_key, log_requests=args.log_requests)
    return app


class GuardMiddleware:
    """API-key check (every route but /health) and optional request logging, as plain ASGI so
    streaming responses and client disconnects pass through untouched."""

    def __init__(self, app, api_key: str | None, log_requests: bool) -> None:
        self.app, self.api_key, self.log_requests = app, api_key, log_requests

    async def __call__(self, scope, receive, send) -> None:
        mark("asgi_in")
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.api_key and scope["path"] not in OPEN_ROUTES:
            headers = dict(scope.get("headers") or [])
            auth = headers.get(b"authorization", b"").decode("latin-1")
            if auth != f"Bearer {self.api_key}":
                response = error_response(401, "invalid or missing API key", code="invalid_api_key")
                await response(scope, receive, send)
                return
        if not self.log_requests:
            await self.app(scope, receive, send)
            return
        start, status = time.monotonic(), [0]

        async def send_logged(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            logger.info(
                "%s %s -> %d (%.1f ms)",
                scope["method"],
                scope["path"],
                status[0],
                (time.monotonic() - start) * 1e3,
            )
