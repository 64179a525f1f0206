"""The executor's async view of an engine: batched generation and scoring.

Every `gen` that becomes ready while the event loop runs is queued; once a loop iteration
passes with nothing new queued (all runnable branches are blocked on a model call), the
queue goes to the engine as ONE `generate` call, so the engine schedules the whole wave
together (one extend batch when the KV pool and token budget allow). Calls issued later
form the next wave, which the engine's continuous batching merges with the running one.

Each request of a wave completes on its own (`Engine.submit` calls back per request), so a
branch whose request finishes early goes on while the rest of its wave still decodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sglc.runtime.core import Output, SamplingParams, StreamDelta, new_rid


@dataclass
class _Pending:
    prompt_ids: list[int]
    params: SamplingParams
    future: asyncio.Future
    on_text: Callable[[str], None] | None = None  # streamed text, on the event loop


@dataclass(frozen=True)
class GenResult:
    output: Output
    batch_size: int  # requests in the wave this one was submitted with


class EngineClient:
    """Async `generate` / `score` / `prefetch` over a (thread-safe) `sglc.Engine`."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self._pending: list[_Pending] = []
        self._flush_scheduled = False
        self._queued_since_check = False

    async def generate(
        self, prompt_ids: list[int], params: SamplingParams,
        on_text: Callable[[str], None] | None = None,
    ) -> GenResult:
        """The Output of one request, batched with the others of its wave; `on_text` (if
        given) gets the text as it is generated, on the event loop."""
        loop = asyncio.get_running_loop()
        item = _Pending(prompt_ids, params, loop.create_future(), on_text)
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
        loop.create_task(self._run_wave(wave))

    async def _run_wave(self, wave: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        rids = [new_rid() for _ in wave]
        by_rid = dict(zip(rids, wave, strict=True))

        def on_output(out: Output) -> None:  # on the engine thread
            loop.call_soon_threadsafe(_settle, by_rid[out.rid].future, GenResult(out, len(wave)))

        def on_delta(delta: StreamDelta) -> None:  # on the engine thread
            on_text = by_rid[delta.rid].on_text
            if on_text is not None and delta.text:
                loop.call_soon_threadsafe(on_text, delta.text)

        streaming = any(p.on_text is not None for p in wave)
        try:
            self.engine.submit(
                [p.prompt_ids for p in wave], [p.params for p in wave],
                on_output=on_output, on_delta=on_delta if streaming else None, rids=rids,
            )
        except Exception as exc:  # noqa: BLE001 - handed to every waiting branch
            for p in wave:
                if not p.future.done():
                    p.future.set_exception(exc)

    async def score(self, prompt_ids: list[int], options: Sequence[str]) -> list[Any]:
        """ScoreResults of each option after the prompt, one batched pass (engine.score)."""
        return await asyncio.to_thread(self.engine.score, prompt_ids, list(options))

    async def prefetch(self, prompt_ids: list[int]) -> None:
        """Compute a prompt's KV into the prefix cache (no tokens generated), so branches
        that start with it extend a cached prefix instead of each computing it."""
        await self.generate(prompt_ids, SamplingParams(max_new_tokens=0))


def _settle(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)
