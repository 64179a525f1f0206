"""`Transport`: HTTP to one endpoint, from an event loop of its own (httpx, asyncio).

    caller's event loop ──spawn(coro)──► IO thread: its loop, one httpx.AsyncClient
                                           │ at most max_in_flight requests on the wire,
                                           │ 429/502/503/504, connection failures retried
    callbacks, futures  ◄──────────────────┘ (backoff doubling from backoff_s; Retry-After wins)

A program call runs under its own `asyncio.run`, and an httpx client belongs to one event
loop, so the client lives on a loop in a daemon thread, as the engine's loop does. Every
failure is a `RemoteError` (an `EngineError`) that says which endpoint, what it answered,
and which limit ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import AsyncIterator, Coroutine, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

import httpx

from sglc.runtime.backends.options import RemoteError, RemoteOptions
from sglc.runtime.core import EngineError

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BACKOFF_S = 30.0
JSON = Any  # a decoded JSON value


class Transport:
    """JSON and server-sent-event requests to `base_url`, on the IO thread's loop. The
    `async` methods run there (reach them with `spawn` or `call`); `close` ends the thread."""

    def __init__(self, base_url: str, options: RemoteOptions) -> None:
        self.base_url = base_url.rstrip("/")
        self.options = options
        self.num_requests = 0  # HTTP requests sent, retries included
        self.num_retries = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sglc-remote",
                                        daemon=True)
        self._thread.start()
        self._closed = False
        self._tasks: set[Future[Any]] = set()  # NOTE: touched from any thread: under _lock
        self._lock = threading.Lock()
        self._client, self._slots = self.call(self._open())

    async def _open(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        headers = {"Authorization": f"Bearer {self.options.api_key}"} if self.options.api_key \
            else {}
        client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers,
            timeout=httpx.Timeout(self.options.timeout_s, connect=self.options.connect_timeout_s),
            limits=httpx.Limits(max_connections=self.options.max_in_flight),
        )
        return client, asyncio.Semaphore(self.options.max_in_flight)

    # -- running coroutines on the IO loop ------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run `coro` on the IO loop; its future (cancel it to cancel the coroutine)."""
        if self._closed:
            coro.close()
            raise EngineError(f"the connection to {self.base_url} is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        with self._lock:
            self._tasks.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._tasks.discard(future)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the IO loop and wait for it (from any thread but the IO thread)."""
        return self.spawn(coro).result()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the IO loop from another event loop (cancelling carries over)."""
        return await asyncio.wrap_future(self.spawn(coro))

    def close(self) -> None:
        """Cancel what is in flight (the server aborts those requests), end the thread."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            tasks = list(self._tasks)
        for task in tasks:
            task.cancel()

        async def shut() -> None:
            await self._client.aclose()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    # -- requests (on the IO loop) ----------------------------------------------------------------
    async def get_json(self, path: str) -> JSON:
        return await self._json("GET", path, None)

    async def post_json(self, path: str, body: Mapping[str, Any]) -> JSON:
        return await self._json("POST", path, body)

    async def _json(self, method: str, path: str, body: Mapping[str, Any] | None) -> JSON:
        where = self._where(method, path)
        async with self._response(method, path, body) as response:
            try:
                await response.aread()
            except httpx.TimeoutException:
                raise self._timeout(where) from None
            except httpx.TransportError as exc:
                raise RemoteError(f"{where}: the connection broke: {_describe(exc)}") from None
            return _parse(response.text, where)

    async def post_stream(self, path: str, body: Mapping[str, Any]) -> AsyncIterator[JSON]:
        """The `data:` objects of a server-sent-event response, up to `data: [DONE]`. Retried
        only before the first event; an `{"error": ...}` event raises RemoteError."""
        where = self._where("POST", path)
        async with self._response("POST", path, body) as response:
            try:
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    event = _parse(data, where)
                    if isinstance(event, dict) and "error" in event:
                        raise RemoteError(f"{where} failed mid-stream: {_message(event)}")
                    yield event
            except httpx.TimeoutException:
                raise self._timeout(where) from None
            except httpx.TransportError as exc:
                raise RemoteError(f"{where}: the connection broke mid-stream: "
                                  f"{_describe(exc)}") from None
        raise RemoteError(f"{where}: the stream ended without `data: [DONE]`")

    @contextlib.asynccontextmanager
    async def _response(self, method: str, path: str, body: Mapping[str, Any] | None
                        ) -> AsyncIterator[httpx.Response]:
        """A successful (2xx) response, its body not read yet, holding a slot until closed."""
        response = await self._send(method, path, body)
        try:
            yield response
        finally:
            await response.aclose()
            self._slots.release()

    async def _send(self, method: str, path: str, body: Mapping[str, Any] | None
                    ) -> httpx.Response:
        """Send until a 2xx answer (returned holding a slot of `max_in_flight`), a final
        error, or `max_retries` retries; no slot is held while waiting to retry."""
        where = self._where(method, path)
        attempt = 0
        while True:
            await self._slots.acquire()
            self.num_requests += 1
            try:
                error, retry_after = await self._attempt(method, path, body, where)
            except BaseException:
                self._slots.release()
                raise
            if isinstance(error, httpx.Response):
                return error  # a success, slot held
            self._slots.release()
            if error.status is not None and error.status not in RETRY_STATUSES:
                raise error
            if attempt >= self.options.max_retries:
                retries = f"{attempt} retr{'y' if attempt == 1 else 'ies'}"
                raise RemoteError(f"{error} (after {retries}: max_retries)", error.status)
            attempt += 1
            self.num_retries += 1
            wait = min(self.options.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            await asyncio.sleep(retry_after if retry_after is not None else
                                wait * (0.5 + random.random() / 2))

    async def _attempt(self, method: str, path: str, body: Mapping[str, Any] | None,
                       where: str) -> tuple[httpx.Response | RemoteError, float | None]:
        """One try: (the open 2xx response, None) or (the error, a Retry-After)."""
        try:
            request = self._client.build_request(method, path, json=body)
            response = await self._client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            return RemoteError(f"cannot reach {self.base_url}: {_describe(exc)}"), None
        except httpx.TimeoutException:
            raise self._timeout(where) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            return RemoteError(f"cannot reach {self.base_url}: {_describe(exc)}"), None
        if response.status_code < 300:
            return response, None
        try:
            await response.aread()
        except httpx.TransportError:
            pass
        finally:
            await response.aclose()
        error = RemoteError(f"{where} answered {response.status_code}: "
                            f"{_message_of(response)}", response.status_code)
        return error, _retry_after(response.headers.get("retry-after"))

    def _where(self, method: str, path: str) -> str:
        return f"{method} {self.base_url}{path}"

    def _timeout(self, where: str) -> RemoteError:
        return RemoteError(f"{where}: no answer within {self.options.timeout_s:g} s (the "
                           "request timeout: timeout_s, --request-timeout)")


def _parse(text: str, where: str) -> JSON:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise RemoteError(f"{where} answered with something other than JSON: "
                          f"{text[:200]!r}") from None


def _message_of(response: httpx.Response) -> str:
    try:
        return _message(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:500] or response.reason_phrase
    except httpx.ResponseNotRead:
        return response.reason_phrase


def _message(body: JSON) -> str:
    """The server's message in an error body: OpenAI's `{"error": {"message"}}`, FastAPI's
    `{"detail"}`, or the body itself."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        for key in ("error", "detail", "message"):
            if isinstance(body.get(key), str):
                return body[key]
    return json.dumps(body)[:500]


def _retry_after(value: str | None) -> float | None:
    try:
        return None if value is None else min(max(float(value), 0.0), MAX_BACKOFF_S)
    except ValueError:
        return None  # an HTTP date: use the backoff


def _describe(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__
