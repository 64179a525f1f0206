"""`LocalEngine`: the executor's `ModelClient` over an in-process `sglc.Engine`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sglc.runtime.core import Output, SamplingParams, StreamDelta
from sglc.runtime.executor.client import OptionScore, Tokenizer

if TYPE_CHECKING:  # the engine (and torch) load only when a runtime creates one
    from sglc.runtime.engine import Engine


class LocalEngine:
    """A `ModelClient` for an engine in this process: requests go straight to its loop
    thread (`Engine.submit`), scoring runs in a worker thread so the event loop goes on."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def tokenizer(self) -> Tokenizer:
        return self.engine.tokenizer

    def submit(
        self,
        prompts: Sequence[list[int]],
        params: Sequence[SamplingParams],
        *,
        rids: Sequence[str],
        on_output: Callable[[Output], None],
        on_delta: Callable[[StreamDelta], None] | None = None,
    ) -> None:
        self.engine.submit(list(prompts), list(params), on_output=on_output, on_delta=on_delta,
                           rids=rids)

    async def score(
        self, prompt_ids: list[int], options: Sequence[str | list[int]]
    ) -> list[OptionScore]:
        return await asyncio.to_thread(self.engine.score, prompt_ids, list(options))

    def prebuild(self, regexes: Sequence[str]) -> None:
        self.engine.prebuild_constraints(regexes)


__all__ = ["LocalEngine"]
