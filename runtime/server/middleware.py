"""ASGI middleware in front of every route: API-key auth (outermost, so a request without
the key is refused before its body is read), then the request body size limit."""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sglc.runtime.server.errors import APIError

OPEN_PATHS = frozenset({"/health"})  # reachable without the API key (load balancer probes)


class AuthMiddleware:
    """`Authorization: Bearer <key>` on every route but OPEN_PATHS (constant-time compare)."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.expected = None if api_key is None else f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.expected is None or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        message = ("missing API key: send `Authorization: Bearer <key>`" if not given
                   else "invalid API key")
        error = APIError(401, message, code="invalid_api_key",
                         headers={"WWW-Authenticate": "Bearer"})
        await error.response()(scope, receive, send)


class BodyLimitMiddleware:
    """Reads the whole request body first (FastAPI would anyway) and refuses one larger than
    `max_bytes` with 413: by Content-Length before reading, or once the bytes pass it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(APIError(400, "invalid Content-Length header"), scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await _refuse(self._too_large(), scope, receive, send)
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left while sending
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(self._too_large(), scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        is_replayed = False

        async def replay() -> Message:
            nonlocal is_replayed
            if not is_replayed:
                is_replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only the disconnect is left

        await self.app(scope, replay, send)

    def _too_large(self) -> APIError:
        return APIError(413, f"request body is larger than this server's limit of "
                             f"{self.max_bytes} bytes", code="request_too_large")


async def _refuse(error: APIError, scope: Scope, receive: Receive, send: Send) -> None:
    response: JSONResponse = error.response()
    response.headers["Connection"] = "close"  # the unread body must not be parsed as a request
    await response(scope, receive, send)
