"""`Wire`: how a remote client's model calls become HTTP requests, one per API.

    native_wire.NativeWire   an `sglc serve`: POST /generate with the SamplingParams as they
                             are, POST /score for selects; exact token ids, cached tokens
    openai_wire.OpenAIWire   any OpenAI-compatible server (vLLM, SGLang, ...): POST
                             /v1/completions, features probed once (openai_features.py)

Wire methods run on the transport's IO loop; a failure is an EngineError (RemoteError).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sglc.runtime.core import FinishReason, Output, SamplingParams, StreamDelta, Usage

OnDelta = Callable[[StreamDelta], None]


class Wire(Protocol):
    async def generate(self, rid: str, prompt_ids: list[int], params: SamplingParams,
                       on_delta: OnDelta | None) -> list[Output]:
        """One Output per sample (`params.n`); `on_delta`, when given, hears the text (and
        token ids) as it is decoded."""
        ...

    async def score(self, prompt_ids: list[int],
                    options: Sequence[str | list[int]]) -> list[RemoteScore]:
        """One score per option, as `ModelClient.score`."""
        ...

    async def prepare(self, regexes: Sequence[str]) -> None:
        """Ready the constrained gens of a program that is about to run (may do nothing)."""
        ...


@dataclass(frozen=True)
class RemoteScore:
    """An option's log-likelihood, as the server computed it (an `OptionScore`)."""

    logprob: float
    num_tokens: int
    token_logprobs: tuple[float, ...] = ()

    @property
    def normalized(self) -> float:
        return self.logprob / max(self.num_tokens, 1)


def finish_reason_of(value: object) -> FinishReason | None:
    """An OpenAI / native `finish_reason` (a string, or `{"type": ...}`) as ours."""
    if isinstance(value, dict):
        value = value.get("type")
    if value is None:
        return None
    try:
        return FinishReason(value)
    except ValueError:
        return FinishReason.STOP  # e.g. "content_filter", "tool_calls": the server stopped


def failed_output(rid: str, index: int, num_prompt_tokens: int, error: str) -> Output:
    """The Output of a sample the endpoint did not produce."""
    return Output(rid, index, "", [], FinishReason.ABORT, Usage(num_prompt_tokens, 0, 0),
                  error=error)
