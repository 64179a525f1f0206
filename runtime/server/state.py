"""What every route needs: the engine and its job runner, limits, metrics, token strings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sglc.runtime.server.config import ServerConfig
from sglc.runtime.server.engine_api import ServingEngine
from sglc.runtime.server.errors import APIError
from sglc.runtime.server.jobs import JobRunner
from sglc.runtime.server.metrics import ServerMetrics
from sglc.runtime.server.responses import TokenText
from sglc.runtime.server.sampling import Limits

PROBE_TIMEOUT_S = 10.0
T = TypeVar("T")


class EngineProbe:
    """`engine.stats()` off the event loop: one call at a time (concurrent callers share
    it), so a stuck engine costs one blocked worker thread, not one per health check."""

    def __init__(self, engine: ServingEngine) -> None:
        self.engine = engine
        self._pending: asyncio.Future[dict[str, Any]] | None = None
        self._thread = ThreadPoolExecutor(1, "sglc-probe")

    async def stats(self, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
        """The engine's stats, or TimeoutError; EngineError when it is shut down."""
        if self._pending is None or self._pending.done():
            loop = asyncio.get_running_loop()
            self._pending = loop.run_in_executor(self._thread, self.engine.stats)
        return await asyncio.wait_for(asyncio.shield(self._pending), timeout_s)


@dataclass
class ServerState:
    engine: ServingEngine
    config: ServerConfig
    limits: Limits
    metrics: ServerMetrics
    jobs: JobRunner
    token_text: TokenText
    probe: EngineProbe
    # NOTE: calls that wait for the engine (score) get their own threads, so a burst of them
    # cannot take every thread of the default pool, which submits all requests
    waiters: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(16, "sglc-wait"))

    async def wait_for_engine(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, a call that blocks until the engine answers, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.waiters, fn, *args)

    @classmethod
    def build(cls, engine: ServingEngine, config: ServerConfig) -> ServerState:
        metrics = ServerMetrics(config.model_name)
        return cls(engine, config, Limits.of(config, engine.max_context_len), metrics,
                   JobRunner(engine, metrics, config.max_in_flight), TokenText(engine.tokenizer),
                   EngineProbe(engine))

    def check_model(self, model: str | None) -> None:
        """404 for a model this server does not serve (None: the served one)."""
        if model is not None and model != self.config.model_name:
            raise APIError(404, f"the model '{model}' does not exist on this server "
                                f"(it serves '{self.config.model_name}')",
                           param="model", code="model_not_found")
