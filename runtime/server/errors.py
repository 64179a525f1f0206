"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with the status
that says who is at fault (400 bad input, 401 no or wrong key, 404 unknown model or route,
413 body too large, 503 overloaded, 500 the server's own failure).

Routes raise `APIError`; `install_error_handlers` turns it, request validation failures and
engine `InvalidRequest`s into these responses, so no handler writes an error body itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from sglc.runtime.core import InvalidRequest
from sglc.runtime.server.connection import ClientDisconnected

log = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
          405: "invalid_request_error", 413: "invalid_request_error", 422: "program_error", 503: "server_overloaded",
          504: "timeout"}


# how pydantic names a union's member in an error path: a type, never a (snake_case) field
_TYPE_TAG = re.compile(r"^(str|int|float|bool|dict|list|none)$|[\[\]-]|^[A-Z]")


class APIError(Exception):
    """An error response: raise it from a route."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_body(status: int, message: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def overloaded(limit: int) -> APIError:
    return APIError(503, f"the server is at its limit of {limit} sequences in flight; "
                         "retry shortly", code="overloaded", headers={"Retry-After": "1"})


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """The first pydantic error as (message, param): the field path, dotted. Errors of one
    field that is a union of types (pydantic reports one per member, the member's type in
    the path) become one: the field and the types it may have."""
    if not errors:
        return "invalid request", None
    err = errors[0]
    loc = [str(p) for p in err.get("loc", ()) if p != "body"]
    kind = err.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON", None
    same_field = [[str(p) for p in e.get("loc", ()) if p != "body"] for e in errors]
    same_field = [other for other in same_field if other[:1] == loc[:1]]
    common = _common_prefix(same_field)
    members = {other[len(common)] for other in same_field if len(other) > len(common)}
    if len(same_field) > 1 and len(common) < len(loc) and all(map(_TYPE_TAG.search, members)):
        param = ".".join(common)
        kinds = sorted({re.sub(r"constrained-(\w+)", r"\1", m) for m in members})
        return f"invalid value for '{param}': expected {' or '.join(kinds)}", param
    param = ".".join(loc) or None
    if kind == "missing" and param:
        return f"missing required field '{param}'", param
    if kind == "extra_forbidden" and param:
        return f"unrecognized request argument '{param}'", param
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if param is None:
        return f"invalid request body: {msg}", None
    return f"invalid value for '{param}': {msg}", param


def _common_prefix(paths: Sequence[Sequence[str]]) -> list[str]:
    prefix = list(paths[0]) if paths else []
    for path in paths[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc.errors())
        return bad_request(message, param).response()

    @app.exception_handler(InvalidRequest)
    async def _invalid(request: Request, exc: InvalidRequest) -> JSONResponse:
        return bad_request(str(exc)).response()

    @app.exception_handler(ClientDisconnected)
    async def _gone(request: Request, exc: ClientDisconnected) -> Response:
        log.info("client left %s %s before the response; its requests were aborted",
                 request.method, request.url.path)
        return Response(status_code=499)  # nobody reads it (nginx's "client closed request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: f"no route {request.method} {request.url.path}",
                   405: f"method {request.method} is not allowed on {request.url.path}"}
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return APIError(exc.status_code, message.get(exc.status_code, str(exc.detail)),
                        code=code, headers=exc.headers).response()

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return APIError(500, f"internal server error: {type(exc).__name__}",
                        code="internal_error").response()
