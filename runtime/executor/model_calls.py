"""The interpreter's model calls, batched in waves over a `ModelClient`.

Every `gen` that becomes ready while the event loop runs is queued; once a loop iteration
passes with nothing new queued (all runnable branches are blocked on a model call), the
queue goes to the client as ONE `submit`, so the model schedules the whole wave together
(one extend batch when the KV pool and token budget allow). Calls issued later form the next
wave, which the engine's continuous batching merges with the running one.

Each request of a wave completes on its own (the client calls back per request), so a branch
whose request finishes early goes on while the rest of its wave still decodes. A request
with `n` samples completes when all n have come back (or one failed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sglc.runtime.core import Output, SamplingParams, StreamDelta, new_rid
from sglc.runtime.executor.client import ModelClient, OptionScore, Tokenizer


@dataclass
class _Pending:
    prompt_ids: list[int]
    params: SamplingParams
    future: asyncio.Future[GenResult]
    on_delta: Callable[[str], None] | None = None  # decoded text, on the event loop
    outputs: list[Output] = field(default_factory=list)  # samples so far (n > 1)


@dataclass(frozen=True)
class GenResult:
    outputs: list[Output]  # one per sample, by index
    batch_size: int  # requests in the wave this one was submitted with

    @property
    def output(self) -> Output:
        return self.outputs[0]


class ModelCalls:
    """`generate` / `score` / `prefetch` for one interpreter (one event loop)."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client
        self._pending: list[_Pending] = []
        self._flush_scheduled = False
        self._queued_since_check = False

    @property
    def tokenizer(self) -> Tokenizer:
        return self.client.tokenizer

    async def generate(
        self, prompt_ids: list[int], params: SamplingParams,
        on_delta: Callable[[str], None] | None = None,
    ) -> GenResult:
        """The Output of one request, batched with the others of its wave; `on_delta` (if
        given) gets the text as it is decoded, on the event loop."""
        loop = asyncio.get_running_loop()
        item = _Pending(prompt_ids, params, loop.create_future(), on_delta)
        self._pending.append(item)
        self._queued_since_check = True
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._maybe_flush)
        return await item.future

    def _maybe_flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self._queued_since_check:  # others may still be on their way: wait a tick more
            self._queued_since_check = False
            loop.call_soon(self._maybe_flush)
            return
        wave, self._pending = self._pending, []
        self._flush_scheduled = False
        self._submit(wave, loop)

    def _submit(self, wave: list[_Pending], loop: asyncio.AbstractEventLoop) -> None:
        rids = [new_rid() for _ in wave]
        by_rid = dict(zip(rids, wave, strict=True))

        def on_output(out: Output) -> None:  # on any thread
            loop.call_soon_threadsafe(_collect, by_rid[out.rid], out, len(wave))

        def on_delta(delta: StreamDelta) -> None:  # on any thread: the first sample's text
            pending_delta = by_rid[delta.rid].on_delta
            if pending_delta is not None and delta.text and delta.index == 0:
                loop.call_soon_threadsafe(pending_delta, delta.text)

        streaming = any(p.on_delta is not None for p in wave)
        try:
            self.client.submit(
                [p.prompt_ids for p in wave], [p.params for p in wave], rids=rids,
                on_output=on_output, on_delta=on_delta if streaming else None,
            )
        except Exception as exc:  # noqa: BLE001 - handed to the waiting branches
            if len(wave) == 1:
                if not wave[0].future.done():
                    wave[0].future.set_exception(exc)
                return
            # the client refused the wave for one request's sake (bad params): submit them
            # one by one, so that only the requests it refuses fail
            for item in wave:
                self._submit([item], loop)

    async def score(
        self, prompt_ids: list[int], options: Sequence[str | list[int]]
    ) -> list[OptionScore]:
        """A score for each option after the prompt, in one batched pass."""
        return await self.client.score(prompt_ids, options)

    async def prefetch(self, prompt_ids: list[int]) -> None:
        """Compute a prompt's KV into the prefix cache (no tokens generated), so branches
        that start with it extend a cached prefix instead of each computing it."""
        await self.generate(prompt_ids, SamplingParams(max_new_tokens=0))


def _collect(pending: _Pending, out: Output, batch_size: int) -> None:
    """One sample came back (on the event loop); settle once all n have, or one failed."""
    pending.outputs.append(out)
    if out.error or len(pending.outputs) >= pending.params.n:
        outputs = sorted(pending.outputs, key=lambda o: o.index)
        if not pending.future.done():
            pending.future.set_result(GenResult(outputs, batch_size))
