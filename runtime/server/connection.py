"""The HTTP connection's side of a request: server-sent events, and noticing a client that
went away.

Streaming: `sse_response` wraps an async iterator of JSON-able events as
`data: {...}\\n\\n` lines ending in `data: [DONE]\\n\\n`. Starlette stops the iterator when the
client disconnects (uvicorn speaks ASGI 2.3, so StreamingResponse listens for
`http.disconnect`), which closes it at its current `await` and so the job inside aborts.

Non-streaming: `unless_disconnected` races the work against `http.disconnect`, so a client
that gives up on a long generation frees the engine at once, not when it would have ended.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

DONE = "data: [DONE]\n\n"
T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before the response was ready."""


def sse_event(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


class _SSEResponse(StreamingResponse):
    def __init__(self, body: AsyncIterator[str], on_close: Callable[[], Awaitable[None]]) -> None:
        # NOTE: no-cache and no proxy buffering, so each event reaches the client when sent
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # also when the client left before the body iterator ever started
            await self.on_close()


def sse_response(events: AsyncIterator[Any],
                 on_close: Callable[[], Awaitable[None]]) -> StreamingResponse:
    """A `text/event-stream` of `events`; `on_close` runs once the response is over,
    however it ended (finished, client gone, error)."""

    async def body() -> AsyncIterator[str]:
        async for event in events:
            yield sse_event(event)
        yield DONE

    return _SSEResponse(body(), on_close)


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it, raise ClientDisconnected."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        raise ClientDisconnected
    return task.result()


async def _disconnect(request: Request) -> None:
    # the body was read already, so the next message can only be the disconnect
    while (await request.receive())["type"] != "http.disconnect":
        pass
