"""The server's side of the engine: admission control and one job per HTTP request.

    route ──admit(n)──► Admission ──► Job.start() ──submit (worker thread)──► Engine
                                         ▲                                    │ loop thread
                                         └── asyncio.Queue ◄── Mailbox ◄──────┘
                                             (StreamDelta, Output) events

Tokenizing and chat-template rendering happen inside `Engine.submit`, so it runs in a worker
thread; the engine's callbacks only append to the event loop's `Mailbox`, which wakes the
loop once per burst (an engine step's events for every running request), not once per event. Leaving a job's `async with`
early (client gone, error, cancellation) aborts what is unfinished, which frees its KV.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any

from fastapi import Request
from starlette.responses import Response

from sglc.runtime.core import InvalidRequest, Output, SamplingParams, StreamDelta
from sglc.runtime.server.connection import sse_response, unless_disconnected
from sglc.runtime.server.engine_api import Prompt, ServingEngine
from sglc.runtime.server.errors import APIError, bad_request, error_body, overloaded
from sglc.runtime.server.metrics import ServerMetrics

Event = StreamDelta | Output
MakeEvents = Callable[["Job"], AsyncIterator[dict[str, Any]]]


def stream_error(message: str) -> dict[str, Any]:
    """The event a stream sends when the engine failed its request."""
    return error_body(500, f"generation failed: {message}", code="engine_error")


class Admission:
    """At most `limit` sequences (prompts x n) in flight; past that, 503 at once (a client
    retries later) rather than a queue that grows without bound. Event loop only."""

    def __init__(self, limit: int, metrics: ServerMetrics) -> None:
        self.limit = limit
        self.metrics = metrics
        self.in_flight = 0

    @contextmanager
    def hold(self, num_seqs: int) -> Iterator[None]:
        if num_seqs > self.limit:
            raise bad_request(f"this request needs {num_seqs} sequences (prompts x n); the "
                              f"server runs at most {self.limit} at once", "n")
        if self.in_flight + num_seqs > self.limit:
            raise overloaded(self.limit)
        self._add(num_seqs)
        try:
            yield
        finally:
            self._add(-num_seqs)

    def _add(self, num: int) -> None:
        self.in_flight += num
        self.metrics.in_flight = self.in_flight


class Mailbox:
    """Events from the engine's thread to one event loop. The first post of a burst schedules
    one drain on the loop; later posts only append until it runs, so a step that streams a
    token to each of 64 requests costs the engine thread 64 appends and the loop one wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._items: list[tuple[Callable[[float, Event], None], float, Event]] = []

    def post(self, deliver: Callable[[float, Event], None], item: Event) -> None:
        """Any thread: `deliver(time posted, item)` runs on the loop soon, in post order."""
        with self._lock:
            wake = not self._items
            self._items.append((deliver, time.perf_counter(), item))
        if wake:
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        for deliver, posted, item in items:
            deliver(posted, item)


class Job:
    """One HTTP request's prompts, submitted together; iterate it for events in arrival
    order: each sample's StreamDeltas, then its Output. Ends when every sample finished."""

    def __init__(self, engine: ServingEngine, prompts: Sequence[Prompt], params: Sequence[SamplingParams],
                 metrics: ServerMetrics, arrived: float, mailbox: Mailbox) -> None:
        self.engine = engine
        self.mailbox = mailbox
        self.prompts = list(prompts)
        self.params = list(params)
        self.metrics = metrics
        self.arrived = arrived
        tag = uuid.uuid4().hex[:16]
        self.rids = [f"srv-{tag}-{i}" for i in range(len(self.prompts))]
        self.prompt_index = {rid: i for i, rid in enumerate(self.rids)}
        self._open = {(rid, k) for rid, p in zip(self.rids, self.params, strict=True)
                      for k in range(p.n)}
        self._last_token_at: dict[tuple[str, int], float] = {}
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._submitted: asyncio.Future[Any] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def post(item: Event) -> None:  # on the engine's loop thread
            self.mailbox.post(self._arrive, item)

        def submit() -> list[str]:
            return self.engine.submit(self.prompts, self.params, on_output=post,
                                      on_delta=post, rids=self.rids)

        # NOTE: shielded, so that a cancelled start still lets `close` abort what it queued
        self._submitted = loop.run_in_executor(None, submit)
        await asyncio.shield(self._submitted)

    @property
    def is_done(self) -> bool:
        return not self._open

    def __aiter__(self) -> Job:
        return self

    def _arrive(self, now: float, item: Event) -> None:
        """On the event loop, as the engine produces (also after the job closed, so aborted
        samples are counted): record the timing, queue the event."""
        key = (item.rid, item.index)
        if isinstance(item, Output):
            self.metrics.on_output(item, now - self.arrived)
        elif item.token_ids:
            last = self._last_token_at.get(key)
            self.metrics.on_tokens(len(item.token_ids), now - (last or self.arrived),
                                   last is None, now)
            self._last_token_at[key] = now
        self._queue.put_nowait(item)

    async def __anext__(self) -> Event:
        if not self._open:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, Output):
            self._open.discard((item.rid, item.index))
        return item

    async def outputs(self) -> list[Output]:
        """Every sample's Output, by prompt then sample index."""
        outputs = [event async for event in self if isinstance(event, Output)]
        return sorted(outputs, key=lambda o: (self.prompt_index[o.rid], o.index))

    def close(self) -> None:
        """Abort every request with a sample still open (no-op when all finished)."""
        if not self._open or self._submitted is None:
            return
        rids = sorted({rid for rid, _ in self._open})
        self._open.clear()

        def abort(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is None:
                for rid in rids:
                    self.engine.abort(rid)

        self._submitted.add_done_callback(abort)


class JobRunner:
    """Admits, starts and always closes jobs; the routes' one way to reach the engine."""

    def __init__(self, engine: ServingEngine, metrics: ServerMetrics, max_in_flight: int) -> None:
        self.engine = engine
        self.metrics = metrics
        self.admission = Admission(max_in_flight, metrics)
        self._mailbox: Mailbox | None = None

    def mailbox(self) -> Mailbox:
        """The running loop's mailbox (made on first use: the runner is built before the loop)."""
        loop = asyncio.get_running_loop()
        if self._mailbox is None or self._mailbox.loop is not loop:
            self._mailbox = Mailbox(loop)
        return self._mailbox

    @asynccontextmanager
    async def run(self, prompts: Sequence[Prompt], params: Sequence[SamplingParams],
                  arrived: float | None = None) -> AsyncIterator[Job]:
        arrived = time.perf_counter() if arrived is None else arrived
        with self.admission.hold(sum(p.n for p in params)):
            job = Job(self.engine, prompts, params, self.metrics, arrived, self.mailbox())
            try:
                try:
                    await job.start()
                except InvalidRequest as exc:
                    raise bad_request(str(exc)) from None
                yield job
            finally:
                job.close()

    async def stream(self, prompts: Sequence[Prompt], params: Sequence[SamplingParams],
                     arrived: float, make_events: MakeEvents) -> Response:
        """Start the job now (so a refused request is an HTTP error, not a broken stream),
        then stream `make_events(job)` as SSE; the job closes when the response ends."""
        stack = AsyncExitStack()
        job = await stack.enter_async_context(self.run(prompts, params, arrived))
        return sse_response(make_events(job), stack.aclose)

    async def complete(self, request: Request, prompts: Sequence[Prompt],
                       params: Sequence[SamplingParams], arrived: float) -> list[Output]:
        """Every sample's Output; aborted if the client disconnects first; 500 if the
        engine failed a sample."""
        async with self.run(prompts, params, arrived) as job:
            outputs = await unless_disconnected(request, job.outputs())
        for out in outputs:
            if out.error:
                raise APIError(500, f"generation failed: {out.error}", code="engine_error")
        return outputs
