"""ServingEngine: what the server uses of `sglc.Engine`, its public API and nothing else.

`sglc.Engine` satisfies it as is; the in-process tests pass a scripted engine. Every call
but `submit`'s callbacks and `abort` may block until the engine's loop thread answers, so
the server makes them off its event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sglc.runtime.core import Output, SamplingParams, StreamDelta

if TYPE_CHECKING:
    from sglc.runtime.engine import ScoreResult

Prompt = str | list[int] | list[dict[str, str]]  # text, token ids, or chat messages


class ServingEngine(Protocol):
    tokenizer: Any  # the model's Hugging Face tokenizer (None: token-id prompts only)
    max_context_len: int

    def submit(self, prompts: Sequence[Prompt], sampling_params: Sequence[SamplingParams], *,
               on_output: Callable[[Output], None],
               on_delta: Callable[[StreamDelta], None] | None = None,
               rids: Sequence[str] | None = None) -> list[str]:
        """Queue the prompts; callbacks run on the engine's thread. InvalidRequest if bad."""
        ...

    def abort(self, rid: str) -> None:
        """Finish a request's samples with 'abort' and free their KV (non-blocking)."""
        ...

    def score(self, prompt: Prompt, continuations: Sequence[str | Sequence[int]]
              ) -> list[ScoreResult]:
        ...

    def stats(self) -> dict[str, Any]:
        ...

    def shutdown(self) -> None:
        ...
