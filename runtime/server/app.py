"""`create_app(engine, config)`: the FastAPI app of `sglc serve`.

    GET  /health                  200 while the engine's loop answers (no API key needed)
    GET  /metrics                 Prometheus text (sglc.runtime.server.metrics)
    GET  /v1/models[/{id}]        the one served model
    POST /v1/completions          OpenAI completions (stream, n, logprobs, echo, ...)
    POST /v1/chat/completions     OpenAI chat completions (response_format, ...)
    POST /generate, /score        native (sglc.runtime.server.native_routes)
    GET  /tokenizer               the served tokenizer's files (for remote clients)
    GET  /v1/programs, POST /v1/programs/run   SGL programs (sglc.runtime.server.programs)

The engine is the caller's: the app shuts it down only when told it owns it (`sglc serve`),
so tests can serve one engine from several apps, in-process (httpx.ASGITransport) or under
uvicorn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import Response

from sglc.runtime.core import EngineError
from sglc.runtime.server.config import ServerConfig
from sglc.runtime.server.engine_api import ServingEngine
from sglc.runtime.server.errors import APIError, install_error_handlers
from sglc.runtime.server.metrics import CONTENT_TYPE
from sglc.runtime.server.middleware import AuthMiddleware, BodyLimitMiddleware
from sglc.runtime.server.native_routes import native_router
from sglc.runtime.server.openai_routes import openai_router
from sglc.runtime.server.programs import ProgramRunner, programs_router
from sglc.runtime.server.state import ServerState


def create_app(engine: ServingEngine, config: ServerConfig | None = None, *,
               owns_engine: bool = False) -> FastAPI:
    """The server app over a running `sglc.Engine` (registered programs compile now).
    With `owns_engine`, the app shuts the engine down when the server stops."""
    config = config or ServerConfig()
    state = ServerState.build(engine, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_engine:  # NOTE: before uvicorn re-raises SIGTERM, which ends the process
            await asyncio.to_thread(engine.shutdown)

    app = FastAPI(title="sglc", version="0.1.0", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.sglc = state
    install_error_handlers(app)
    app.include_router(openai_router(state))
    app.include_router(native_router(state))
    app.include_router(programs_router(state, ProgramRunner(engine, config)))

    @app.get("/health")
    async def health() -> dict[str, str]:
        try:
            await state.probe.stats()
        except (asyncio.TimeoutError, EngineError) as exc:
            raise APIError(503, f"the engine is not responding: {exc or 'timeout'}",
                           code="engine_unavailable") from None
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        try:
            stats = await state.probe.stats()
        except (asyncio.TimeoutError, EngineError):
            stats = {}
        return Response(state.metrics.render(stats), media_type=CONTENT_TYPE)

    # the last added is the outermost: auth runs before the body is read
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(AuthMiddleware, api_key=config.api_key)
    return app
