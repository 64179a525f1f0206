"""The engine's public types: sampling parameters, outputs, stream deltas, errors.

Everyone (runtime, executor, language tables) imports these from here; nobody re-declares
them. This module imports nothing of sglc; the engine's request type is `sglc.runtime.req`.
"""

from __future__ import annotations

import enum
import functools
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Protocol


class EngineError(Exception):
    """A problem with a request or the engine's inputs, stated for the user."""


class InvalidRequest(EngineError, ValueError):
    """A request that can never be served (bad params, prompt too long, ...)."""


class ParamRule(Protocol):
    """What a sampling parameter may be; `error` words a violation, or returns None."""

    def error(self, name: str, value: object) -> str | None: ...


@dataclass(frozen=True)
class Range:
    """The numbers a sampling parameter may take, worded once: `SamplingParams` validates
    with it and `sglc check` tests a gen's constant parameters with the same object.

    `integer` asks for an int (else any finite int or float; never a bool), `optional` lets
    None ("not set") through; `low`/`high` bound the value, excluded when `*_open`.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    optional: bool = False

    def admits(self, value: object) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, int if self.integer else (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """The allowed values in words: `in (0, 1]`, `>= 0`, `None or an integer >= 1`."""
        if self.low is not None and self.high is not None:
            bounds = (f"in {'(' if self.low_open else '['}{self.low:g}, "
                      f"{self.high:g}{')' if self.high_open else ']'}")
        elif self.low is not None:
            bounds = f"{'>' if self.low_open else '>='} {self.low:g}"
        elif self.high is not None:
            bounds = f"{'<' if self.high_open else '<='} {self.high:g}"
        else:
            bounds = ""
        text = " ".join(p for p in ("an integer" if self.integer else "", bounds) if p)
        text = text or "a number"
        return f"None or {text}" if self.optional else text

    def error(self, name: str, value: object) -> str | None:
        return None if self.admits(value) else f"{name} must be {self.describe()}, got {value!r}"


@dataclass(frozen=True)
class NonEmptyStrings:
    """A string or a sequence of strings, none of them empty (stop strings)."""

    def error(self, name: str, value: object) -> str | None:
        items = (value,) if isinstance(value, str) else value
        if isinstance(items, (tuple, list)) and all(isinstance(s, str) and s for s in items):
            return None
        return f"{name} strings must be non-empty strings"


@dataclass(frozen=True)
class Name:
    """A name (an adapter's, a client's): a string, or None for "not set"."""

    def error(self, name: str, value: object) -> str | None:
        if value is None or isinstance(value, str):
            return None
        return f"{name} must be None or a string, got {value!r}"


_RULE = "rule"  # the key of a field's ParamRule in its dataclass metadata


def _ruled(default: Any, rule: ParamRule) -> Any:
    return field(default=default, metadata={_RULE: rule})


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one request. Validated on construction.

    `None` means "not set": `top_k=None` is no top-k filter, `seed=None` is
    non-deterministic sampling, `logprobs=None` returns no logprobs. Each checked field
    carries its `ParamRule` (a `Range` mostly) in its metadata: `SamplingParams.rules()`.
    """

    max_new_tokens: int = _ruled(128, Range(low=0, integer=True))
    temperature: float = _ruled(1.0, Range(low=0))
    top_p: float = _ruled(1.0, Range(low=0, high=1, low_open=True))
    top_k: int | None = _ruled(None, Range(low=1, integer=True, optional=True))
    min_p: float = _ruled(0.0, Range(low=0, high=1, high_open=True))
    repetition_penalty: float = _ruled(1.0, Range(low=0, low_open=True))
    frequency_penalty: float = _ruled(0.0, Range(low=-2, high=2))
    presence_penalty: float = _ruled(0.0, Range(low=-2, high=2))
    seed: int | None = _ruled(None, Range(integer=True, optional=True))
    stop: tuple[str, ...] = _ruled((), NonEmptyStrings())
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    n: int = _ruled(1, Range(low=1, integer=True))
    logprobs: int | None = _ruled(None, Range(low=0, integer=True, optional=True))
    skip_special_tokens: bool = True
    # constrained decoding: at most one of these (see sglc.runtime.constrained)
    regex: str | None = None
    json_schema: str | None = None  # a JSON schema as JSON text (a dict is serialized)
    choices: tuple[str, ...] | None = None
    # serving, not sampling: the LoRA adapter to generate with (a name the engine was started
    # with in `lora_paths`; None: the base model), and the client the request is served for
    # (fair scheduling policies share the engine between clients; None: one anonymous client)
    lora: str | None = _ruled(None, Name())
    client: str | None = _ruled(None, Name())

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
        for name, rule in self.rules().items():
            message = rule.error(name, getattr(self, name))
            if message is not None:
                raise InvalidRequest(f"invalid sampling params: {message}")

    @classmethod
    @functools.cache
    def rules(cls) -> Mapping[str, ParamRule]:
        """Each validated field's rule, by field name (the gen parameter table reads these)."""
        return MappingProxyType({f.name: f.metadata[_RULE] for f in fields(cls)
                                 if _RULE in f.metadata})

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
