"""The engine's public types: sampling parameters, outputs, stream deltas, errors.

Everyone (runtime, executor, language tables) imports these from here; nobody re-declares
them. This module imports nothing of sglc; the engine's request type is `sglc.runtime.req`.
"""

from __future__ import annotations

import dataclasses
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
            bounds = (f"in {'(' if self.low_open else '['}{_number(self.low)}, "
                      f"{_number(self.high)}{')' if self.high_open else ']'}")
        elif self.low is not None:
            bounds = f"{'>' if self.low_open else '>='} {_number(self.low)}"
        elif self.high is not None:
            bounds = f"{'<' if self.high_open else '<='} {_number(self.high)}"
        else:
            bounds = ""
        text = " ".join(p for p in ("an integer" if self.integer else "", bounds) if p)
        text = text or "a number"
        return f"None or {text}" if self.optional else text

    def error(self, name: str, value: object) -> str | None:
        return None if self.admits(value) else f"{name} must be {self.describe()}, got {value!r}"


def _number(value: float) -> str:
    """A bound as written: large powers of two as `2**63`, other numbers as `%g` does."""
    if isinstance(value, int) and abs(value) >= 2**32 and abs(value) & (abs(value) - 1) == 0:
        return f"{'-' if value < 0 else ''}2**{abs(value).bit_length() - 1}"
    return f"{value:g}"


def _shown(value: object) -> str:
    """A bad value in an error message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_sequence(value: object) -> bool:
    """A list or tuple (not a string, bytes, set or mapping: their order or items mislead)."""
    return isinstance(value, (list, tuple))


@dataclass(frozen=True)
class NonEmptyStrings:
    """A string or a list of strings, none of them empty (stop strings, stop regexes)."""

    def error(self, name: str, value: object) -> str | None:
        items = (value,) if isinstance(value, str) else value
        if _is_sequence(items) and all(isinstance(s, str) and s for s in items):
            return None
        return (f"{name} must be a non-empty string or a list of non-empty strings, "
                f"got {_shown(value)}")


@dataclass(frozen=True)
class Flag:
    """True or False: not 1, 0 or "yes"."""

    def error(self, name: str, value: object) -> str | None:
        return None if isinstance(value, bool) else f"{name} must be True or False, got {_shown(value)}"


@dataclass(frozen=True)
class TokenIds:
    """A list of token ids: integers >= 0 (not bools, not floats)."""

    def error(self, name: str, value: object) -> str | None:
        if _is_sequence(value) and all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
        ):
            return None
        return f"{name} must be a list of token ids (integers >= 0), got {_shown(value)}"


@dataclass(frozen=True)
class Text:
    """A string (`optional`: or None); `what` names what the string holds."""

    what: str = "a string"
    optional: bool = False
    dict_ok: bool = False  # a dict is accepted too (a JSON schema, serialized)

    def error(self, name: str, value: object) -> str | None:
        if isinstance(value, str) or (value is None and self.optional):
            return None
        if self.dict_ok and isinstance(value, Mapping):
            return None
        allowed = f"None or {self.what}" if self.optional else self.what
        return f"{name} must be {allowed}, got {_shown(value)}"


@dataclass(frozen=True)
class Choices:
    """None, or a non-empty list of non-empty strings."""

    def error(self, name: str, value: object) -> str | None:
        if value is None or (_is_sequence(value) and value
                             and all(isinstance(c, str) and c for c in value)):
            return None
        return f"{name} must be a non-empty list of non-empty strings, got {_shown(value)}"


@dataclass(frozen=True)
class Name:
    """A name (an adapter's, a client's): a string, or None for "not set"."""

    def error(self, name: str, value: object) -> str | None:
        if value is None or isinstance(value, str):
            return None
        return f"{name} must be None or a string, got {value!r}"


@dataclass(frozen=True)
class RatioPair:
    """None, or two numbers in (0, 1] (`names` say what each is)."""

    names: tuple[str, str]

    def error(self, name: str, value: object) -> str | None:
        if value is None or (_is_sequence(value) and len(value) == 2 and all(
                Range(low=0, high=1, low_open=True).admits(x) for x in value)):
            return None
        return (f"{name} must be None or a pair ({', '.join(self.names)}) of numbers in "
                f"(0, 1], got {_shown(value)}")


_RULE = "rule"  # the key of a field's ParamRule in its dataclass metadata

SEED_RANGE = Range(low=-(2**63), high=2**63, high_open=True, integer=True, optional=True)
"""Seeds are signed 64-bit integers: each one seeds a different generator (no aliasing)."""


CONSTRAINT_FIELDS = ("regex", "json_schema", "choices", "grammar")
"""The SamplingParams fields that constrain the output; at most one is set."""


def _ruled(default: Any, rule: ParamRule) -> Any:
    return field(default=default, metadata={_RULE: rule})


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one request. Validated on construction: InvalidRequest naming the
    parameter, the bad value and what is allowed.

    `None` means "not set": `top_k=None` is no top-k filter, `seed=None` is
    non-deterministic sampling, `logprobs=None` returns no logprobs. Each checked field
    carries its `ParamRule` (a `Range` mostly) in its metadata: `SamplingParams.rules()`.
    Lists (`stop`, `stop_regex`, `stop_token_ids`, `choices`) are kept as tuples.
    """

    max_new_tokens: int = _ruled(128, Range(low=0, integer=True))
    # no EOS, stop token, stop string or stop regex ends the output before this many tokens
    # (as vLLM's min_tokens: EOS and stop tokens are masked until then)
    min_tokens: int = _ruled(0, Range(low=0, integer=True))
    temperature: float = _ruled(1.0, Range(low=0))
    top_p: float = _ruled(1.0, Range(low=0, high=1, low_open=True))
    top_k: int | None = _ruled(None, Range(low=1, integer=True, optional=True))
    min_p: float = _ruled(0.0, Range(low=0, high=1, high_open=True))
    repetition_penalty: float = _ruled(1.0, Range(low=0, low_open=True))
    frequency_penalty: float = _ruled(0.0, Range(low=-2, high=2))
    presence_penalty: float = _ruled(0.0, Range(low=-2, high=2))
    # a signed 64-bit integer; sample i of a request with n > 1 uses seed + i (wrapping
    # around within the signed 64-bit range)
    seed: int | None = _ruled(None, SEED_RANGE)
    stop: tuple[str, ...] = _ruled((), NonEmptyStrings())
    # stop when the output has a match of one of these regexes (the sglc.constraints
    # dialect: Python `re` syntax, regular constructs only, no anchors; searched in linear
    # time); the match is cut off like a stop string
    stop_regex: tuple[str, ...] = _ruled((), NonEmptyStrings())
    stop_token_ids: tuple[int, ...] = _ruled((), TokenIds())
    ignore_eos: bool = _ruled(False, Flag())
    n: int = _ruled(1, Range(low=1, integer=True))
    logprobs: int | None = _ruled(None, Range(low=0, integer=True, optional=True))
    skip_special_tokens: bool = _ruled(True, Flag())
    # prompt-boundary healing: text taken off the end of the prompt that the output is
    # expected to start with. It stays the prompt's: when the output starts with it, stop
    # strings and stop regexes are matched only after it
    healed_prefix: str = _ruled("", Text())
    # constrained decoding: at most one of these (see sglc.runtime.constrained)
    regex: str | None = _ruled(None, Text("a regex string", optional=True))
    # a JSON schema as JSON text (a dict is serialized)
    json_schema: str | None = _ruled(
        None, Text("a JSON schema (JSON text or a dict)", optional=True, dict_ok=True))
    choices: tuple[str, ...] | None = _ruled(None, Choices())
    # a context-free grammar in Lark syntax (llguidance's dialect; decoded by llguidance), or
    # an llguidance grammar in its JSON form (what sglc.constraints.grammar makes of a schema)
    grammar: str | None = _ruled(None, Text("a grammar (Lark text)", optional=True))
    # serving, not sampling: the LoRA adapter to generate with (a name the engine was started
    # with in `lora_paths`; None: the base model), and the client the request is served for
    # (fair scheduling policies share the engine between clients; None: one anonymous client)
    lora: str | None = _ruled(None, Name())
    client: str | None = _ruled(None, Name())
    # Double Sparsity at decode (sglc.runtime.sparsity; the engine needs sparsity_calibration):
    # each step attends to token_ratio of the context (at least the engine's
    # sparsity_min_tokens, the most recent always among them) picked by approximate scores over channel_ratio of each head's
    # channels. None: dense attention
    attention_sparsity: tuple[float, float] | None = _ruled(
        None, RatioPair(("token_ratio", "channel_ratio")))

    def __post_init__(self) -> None:
        self._validate()
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        if isinstance(self.stop_regex, str):
            object.__setattr__(self, "stop_regex", (self.stop_regex,))
        for name in ("stop", "stop_regex", "stop_token_ids"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.attention_sparsity is not None:
            object.__setattr__(self, "attention_sparsity",
                               tuple(float(x) for x in self.attention_sparsity))
        if isinstance(self.json_schema, Mapping):
            try:
                text = json.dumps(self.json_schema)
            except (TypeError, ValueError) as exc:
                raise InvalidRequest(
                    f"invalid sampling params: json_schema must be JSON (text or a dict of "
                    f"JSON values): {exc}") from None
            object.__setattr__(self, "json_schema", text)
        self._validate_combinations()

    def _validate(self) -> None:
        for name, rule in self.rules().items():
            message = rule.error(name, getattr(self, name))
            if message is not None:
                raise InvalidRequest(f"invalid sampling params: {message}")

    def _validate_combinations(self) -> None:
        given = [n for n in CONSTRAINT_FIELDS if getattr(self, n) is not None]
        if len(given) > 1:
            raise InvalidRequest(
                f"invalid sampling params: give at most one of {', '.join(CONSTRAINT_FIELDS)} "
                f"(got {', '.join(given)})"
            )
        if self.min_tokens > self.max_new_tokens:
            raise InvalidRequest(
                f"invalid sampling params: min_tokens must be <= max_new_tokens "
                f"({self.max_new_tokens}), got {self.min_tokens}"
            )
        if self.min_tokens and given:
            raise InvalidRequest(
                f"invalid sampling params: min_tokens cannot be combined with {given[0]}: "
                f"the constraint decides where its output ends (got min_tokens="
                f"{self.min_tokens})"
            )

    @property
    def is_constrained(self) -> bool:
        return any(getattr(self, n) is not None for n in CONSTRAINT_FIELDS)

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

    def for_sample(self, index: int) -> SamplingParams:
        """The params of sample `index` of a request: seed + index (signed 64-bit wrap)."""
        if index == 0 or self.seed is None:
            return self
        seed = (self.seed + index + 2**63) % 2**64 - 2**63
        return dataclasses.replace(self, seed=seed)

    @classmethod
    def coerce(cls, value: SamplingParams | Mapping[str, Any] | None) -> SamplingParams:
        """Accept a SamplingParams, a plain dict (unknown keys are an error), or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(str(k) for k in set(value) - known)
            if unknown:
                raise InvalidRequest(
                    f"invalid sampling params: unknown key(s) {', '.join(unknown)}; "
                    f"known keys are {', '.join(sorted(known))}"
                )
            return cls(**value)
        raise InvalidRequest(
            f"sampling_params must be a SamplingParams, a dict or None, got "
            f"{type(value).__name__} {_shown(value)}"
        )


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
    # answered from the response cache (`Engine(response_cache=PATH)`): the model did not run
    cached_response: bool = False
    # seconds spent waiting in the queue, from the first forward pass to the first token
    # (prefill), and from then to the end (decode); None where the backend does not say
    queue_s: float | None = None
    prefill_s: float | None = None
    decode_s: float | None = None


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
    prompt_index: int = 0  # the position of this sample's prompt in the call that sent it
    # output positions holding tokens jump-forward appended rather than sampled (ascending)
    forced_positions: tuple[int, ...] = ()


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
    prompt_index: int = 0  # the position of this sample's prompt in the call that sent it


class ForwardMode(enum.Enum):
    EXTEND = "extend"  # prefill of new tokens over a cached prefix (includes plain prefill)
    DECODE = "decode"  # one new token per request


_rid_counter = itertools.count()


def new_rid() -> str:
    return f"req-{next(_rid_counter)}"
