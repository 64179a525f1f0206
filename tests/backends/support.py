"""Test doubles of the remote-backend tests: `Proxy`, a real HTTP server on a loopback port
that passes requests on to a real `sglc serve` and misbehaves on request: answers 503 (or
429) first, answers late, hides routes, refuses or renames request fields (as servers of
other kinds do), or goes away."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import uvicorn
from server.support import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "remote-key-7"  # the test endpoint's
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding"}


@dataclass
class Faults:
    """What the proxy does to the next POST requests (`refuse` of them get `status`)."""

    refuse: int = 0
    status: int = 503
    delay_s: float = 0.0  # before passing a POST on
    hidden: set[str] = field(default_factory=set)  # paths answered 404
    unknown_fields: set[str] = field(default_factory=set)  # JSON body fields answered 400
    renamed: dict[str, str] = field(default_factory=dict)  # fields renamed on the way


class Proxy:
    """`with Proxy(upstream) as proxy:` ... `proxy.url`; `proxy.faults` changes its
    behaviour, `proxy.refused` counts the refusals, `proxy.paths` every request's path,
    `proxy.max_active` the most POST requests it had open at once."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults = Faults()
        self.refused = 0
        self.paths: Counter[str] = Counter()
        self.active = self.max_active = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = Starlette(routes=[Route("/{path:path}", self._handle,
                                      methods=["GET", "POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Proxy:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Go away: close the port (requests after this cannot connect)."""
        self._server.should_exit = True
        self._thread.join(timeout=30)

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        self.paths[path] += 1
        if path in self.faults.hidden:
            return JSONResponse({"error": {"message": f"no route {path}"}}, status_code=404)
        if request.method != "POST":
            return await self._forward(request, path, lambda: None)
        body = await request.body()
        fields = set(json.loads(body)) if body else set()
        refused = sorted(fields & self.faults.unknown_fields)
        if refused:
            return JSONResponse({"error": {"message": f"unrecognized request argument "
                                           f"'{refused[0]}'"}}, status_code=400)
        if self.faults.refuse > 0:
            self.faults.refuse -= 1
            self.refused += 1
            return JSONResponse({"error": {"message": "busy, retry"}},
                                status_code=self.faults.status, headers={"Retry-After": "0"})
        self.active += 1
        self.max_active = max(self.max_active, self.active)

        def done() -> None:
            self.active -= 1

        try:
            await asyncio.sleep(self.faults.delay_s)
        except BaseException:
            done()
            raise
        if fields & set(self.faults.renamed):
            data = json.loads(body)
            body = json.dumps({self.faults.renamed.get(k, k): v
                               for k, v in data.items()}).encode()
        return await self._forward(request, path, done, body)

    async def _forward(self, request: Request, path: str, done: Callable[[], None],
                       body: bytes | None = None) -> Response:
        """Pass the request on; the answer streams back as it comes (then `done()`)."""
        client = httpx.AsyncClient(base_url=self.upstream, timeout=300)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length")}
        try:
            upstream = await client.send(client.build_request(
                request.method, path, content=await request.body() if body is None else body,
                headers=headers),
                stream=True)
        except BaseException:
            done()
            await client.aclose()
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                done()
                await upstream.aclose()
                await client.aclose()

        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
        return StreamingResponse(body(), status_code=upstream.status_code, headers=headers)
