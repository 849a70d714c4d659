"""The FastAPI application: lifespan (scheduler process + frontend), auth, error mapping."""

from __future__ import annotations

import atexit
import gc
import logging
import os
import signal
import time
from contextlib import asynccontextmanager
from functools import partial

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

    app.add_middleware(
        GuardMiddleware,
        api_key=args.api_key,
        log_requests=args.log_requests,
        direct={("POST", "/generate"): native_api.generate},
    )
    return app


class GuardMiddleware:
    """API-key check (every route but /health) and optional request logging, as plain ASGI so
    streaming responses and client disconnects pass through untouched.

    `direct`: (method, path) -> an endpoint taking the Request, served here rather than by the
    router, with the app's exception handlers: FastAPI's routing and request handling cost
    more than the whole /generate route (~0.1 ms of a short prompt's time to first token). The
    router still has the route (the OpenAPI schema, other methods)."""

    def __init__(self, app, api_key: str | None, log_requests: bool, direct=None) -> None:
        self.app, self.api_key, self.log_requests = app, api_key, log_requests
        self.direct = dict(direct or {})

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
        app = self.app
        endpoint = self.direct.get((scope["method"], scope["path"])) if self.direct else None
        if endpoint is not None:
            app = partial(self.serve_direct, endpoint)
        if not self.log_requests:
            await app(scope, receive, send)
            return
        start, status = time.monotonic(), [0]

        async def send_logged(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_logged)
        finally:
            logger.info(
                "%s %s -> %d (%.1f ms)",
                scope["method"],
                scope["path"],
                status[0],
                (time.monotonic() - start) * 1e3,
            )

    @staticmethod
    async def serve_direct(endpoint, scope, receive, send) -> None:
        """`endpoint`'s response; an exception it raises answered by the app's handler for it
        (as the router's ExceptionMiddleware does), else raised (a 500)."""
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handlers = scope["app"].exception_handlers
            mro = type(exc).__mro__
            handler = next((handlers[c] for c in mro if c in handlers and c is not Exception), None)
            if handler is None:  # a 500, from the ServerErrorMiddleware outside
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)
