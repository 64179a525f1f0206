"""The engine's public types: sampling parameters, outputs, stream deltas, errors.

Everyone (runtime, executor, language tables) imports these from here; nobody re-declares
them. This module imports nothing of sglc; the engine's request type is `sglc.runtime.req`.
"""

from __future__ import annotations

import enum
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


class EngineError(Exception):
    """A problem with a request or the engine's inputs, stated for the user."""


class InvalidRequest(EngineError, ValueError):
    """A request that can never be served (bad params, prompt too long, ...)."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one request. Validated on construction.

    `None` means "not set": `top_k=None` is no top-k filter, `seed=None` is
    non-deterministic sampling, `logprobs=None` returns no logprobs.
    """

    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    n: int = 1
    logprobs: int | None = None
    skip_special_tokens: bool = True
    # constrained decoding: at most one of these (see sglc.runtime.constrained)
    regex: str | None = None
    json_schema: str | None = None  # a JSON schema as JSON text (a dict is serialized)
    choices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
        if isinstance(self.json_schema, Mapping):
            object.__setattr__(self, "json_schema", json.dumps(self.json_schema))
        if self.choices is not None and not isinstance(self.choices, str):
            object.__setattr__(self, "choices", tuple(self.choices))
        self._validate()
        self._validate_constraint()

    def _validate_constraint(self) -> None:
        given = [n for n in ("regex", "json_schema", "choices") if getattr(self, n) is not None]
        if len(given) > 1:
            raise InvalidRequest(
                f"invalid sampling params: give at most one of regex, json_schema, choices "
                f"(got {', '.join(given)})"
            )
        for name in ("regex", "json_schema"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise InvalidRequest(f"invalid sampling params: {name} must be a string")
        if self.choices is not None and (
            isinstance(self.choices, str) or not self.choices
            or not all(isinstance(c, str) and c for c in self.choices)
        ):
            raise InvalidRequest(
                "invalid sampling params: choices must be a non-empty list of non-empty strings"
            )

    @property
    def is_constrained(self) -> bool:
        return self.regex is not None or self.json_schema is not None or self.choices is not None

    def _validate(self) -> None:
        def bad(msg: str) -> InvalidRequest:
            return InvalidRequest(f"invalid sampling params: {msg}")

        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 0:
            raise bad(f"max_new_tokens must be an integer >= 0, got {self.max_new_tokens!r}")
        if not _finite(self.temperature) or self.temperature < 0:
            raise bad(f"temperature must be >= 0, got {self.temperature!r}")
        if not _finite(self.top_p) or not 0 < self.top_p <= 1:
            raise bad(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise bad(f"top_k must be None or an integer >= 1, got {self.top_k!r}")
        if not _finite(self.min_p) or not 0 <= self.min_p < 1:
            raise bad(f"min_p must be in [0, 1), got {self.min_p!r}")
        if not _finite(self.repetition_penalty) or self.repetition_penalty <= 0:
            raise bad(f"repetition_penalty must be > 0, got {self.repetition_penalty!r}")
        for name in ("frequency_penalty", "presence_penalty"):
            value = getattr(self, name)
            if not _finite(value) or not -2 <= value <= 2:
                raise bad(f"{name} must be in [-2, 2], got {value!r}")
        if not isinstance(self.n, int) or self.n < 1:
            raise bad(f"n must be an integer >= 1, got {self.n!r}")
        if self.logprobs is not None and (not isinstance(self.logprobs, int) or self.logprobs < 0):
            raise bad(f"logprobs must be None or an integer >= 0, got {self.logprobs!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise bad("stop strings must be non-empty strings")
        if self.seed is not None and not isinstance(self.seed, int):
            raise bad(f"seed must be an integer, got {self.seed!r}")

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1

    @property
    def has_penalties(self) -> bool:
        """Whether a repetition, frequency or presence penalty changes the scores."""
        return (self.repetition_penalty != 1.0 or self.frequency_penalty != 0.0
                or self.presence_penalty != 0.0)

    @classmethod
    def coerce(cls, value: SamplingParams | Mapping[str, Any] | None) -> SamplingParams:
        """Accept a SamplingParams, a plain dict (unknown keys are an error), or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise InvalidRequest(
                    f"invalid sampling params: unknown key(s) {', '.join(unknown)}; "
                    f"known keys are {', '.join(sorted(known))}"
                )
            try:
                return cls(**value)
            except TypeError as exc:  # pragma: no cover - guarded by the key check
                raise InvalidRequest(f"invalid sampling params: {exc}") from None
        raise InvalidRequest(f"sampling params must be a SamplingParams or a dict, got {type(value).__name__}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class FinishReason(str, enum.Enum):
    STOP = "stop"  # EOS, a stop token or a stop string
    LENGTH = "length"  # max_new_tokens or the context length
    ABORT = "abort"  # engine.abort(rid) or an engine-side failure of this request


@dataclass(frozen=True)
class Usage:
    """Token and step counts of one sample."""

    prompt_tokens: int
    cached_tokens: int  # prompt tokens served from the prefix cache
    completion_tokens: int
    # forward passes this sample took part in (prefill chunks, decode steps, and the passes
    # that computed tokens appended by jump-forward): the model steps its latency waited on
    forward_passes: int = 0
    forced_tokens: int = 0  # completion tokens appended by jump-forward, not sampled


@dataclass(frozen=True)
class TokenLogprob:
    """Log-probability of one generated token and the top alternatives at that step."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Output:
    """The result of one sample of one request."""

    rid: str
    index: int
    text: str
    token_ids: list[int]
    finish_reason: FinishReason | None
    usage: Usage
    logprobs: list[TokenLogprob] | None = None
    error: str | None = None
    # constrained requests: True when the text is a complete match of the constraint,
    # False when generation stopped first (max_new_tokens, abort); None when unconstrained
    is_valid: bool | None = None


@dataclass(frozen=True)
class StreamDelta:
    """What one sample of one request produced since the last delta."""

    rid: str
    index: int
    text: str
    token_ids: list[int]
    finish_reason: FinishReason | None = None
    logprobs: list[TokenLogprob] | None = None
    error: str | None = None


class ForwardMode(enum.Enum):
    EXTEND = "extend"  # prefill of new tokens over a cached prefix (includes plain prefill)
    DECODE = "decode"  # one new token per request


_rid_counter = itertools.count()


def new_rid() -> str:
    return f"req-{next(_rid_counter)}"
