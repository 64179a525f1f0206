"""`gen` and `select` against the engine: sampling parameters, constraints, values.

The engine does not enforce regexes yet (constrained decoding is a later issue), so a
constrained `gen` is emulated here:

- a **choice** constraint (`gen mood: "happy" | "sad"`) is decided like `select`: each
  choice is scored as a continuation and the most likely one (length-normalized) wins, so
  the value is always valid;
- a flat schema is filled field by field (schema_gen.py);
- any other constraint (int, float, bool, regex, other schemas, json) generates freely, then
  the text must `re.fullmatch` the canonical regex. When the model wrote a valid value and kept
  going, the longest prefix that matches is kept (where a constrained decoder would have
  stopped); otherwise it is a `GenError` naming the gen, the regex and the text.

Prompt-boundary healing (approximate, until the engine can force a first token): a prompt
whose last text piece ends in spaces ("Input: ") is sent without them, and when the output
starts with them (" 84") they are moved into the output's first token, as the model was
trained to see them. When it does not, the stream keeps the spaces as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sglc.ir import Gen, ParseError, parse_generated
from sglc.runtime.core import InvalidRequest, SamplingParams
from sglc.runtime.executor.streams import Stream
from sglc.runtime.inputs import common_prefix_len

DEFAULT_MAX_TOKENS = 128
DEFAULT_TEMPERATURE = 0.0  # SGL programs are greedy unless a gen asks for sampling

_PARAM_NAMES = {
    "max_tokens": "max_new_tokens",
    "stop": "stop",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "ignore_eos": "ignore_eos",
}


class GenParamError(Exception):
    """Gen parameters the engine cannot honour; the message is for the user."""


def sampling_params(params: dict[str, Any]) -> SamplingParams:
    """A gen's evaluated SGL params as engine SamplingParams (greedy, 128 tokens by default)."""
    if params.get("adapter") is not None:
        raise GenParamError(
            f"adapter {params['adapter']!r}: this engine serves no LoRA adapters yet"
        )
    values: dict[str, Any] = {
        "max_new_tokens": DEFAULT_MAX_TOKENS,
        "temperature": DEFAULT_TEMPERATURE,
    }
    for name, value in params.items():
        if name == "adapter":
            continue
        if name not in _PARAM_NAMES:
            raise GenParamError(f"unknown gen parameter '{name}'")
        if name == "top_k" and value is not None and value < 1:
            value = None  # -1 / 0: no top-k filter
        if name == "stop" and isinstance(value, list):
            value = tuple(value)
        values[_PARAM_NAMES[name]] = value
    try:
        return SamplingParams(**values)
    except InvalidRequest as exc:
        raise GenParamError(str(exc).removeprefix("invalid sampling params: ")) from None


@dataclass(frozen=True)
class Checked:
    """A constrained gen's output: the text kept (appended to the stream) and its value."""

    text: str
    value: Any
    is_trimmed: bool


def check_generated(gen: Gen, text: str) -> Checked | None:
    """Validate and parse `text` for `gen`; None when no prefix of it is acceptable."""
    if gen.regex is None:
        return _parse(gen, text, is_trimmed=False)
    pattern = re.compile(gen.regex)
    if pattern.fullmatch(text):
        return _parse(gen, text, is_trimmed=False)
    for end in range(len(text) - 1, 0, -1):
        if pattern.fullmatch(text, 0, end):
            checked = _parse(gen, text[:end], is_trimmed=True)
            if checked is not None:
                return checked
    return None


def _parse(gen: Gen, text: str, *, is_trimmed: bool) -> Checked | None:
    try:
        return Checked(text, parse_generated(gen.value_type, text), is_trimmed)
    except ParseError:
        return None


def describe_constraint(gen: Gen) -> str:
    c = gen.constraint
    if c.kind == "regex":
        return f"/{c.pattern}/"
    if c.kind == "choice":
        return " | ".join(f'"{x}"' for x in c.choices)
    if c.kind == "schema":
        return c.schema or "schema"
    return c.kind


def pick_best(scores: list[Any], *, normalized: bool = True) -> int:
    """Index of the most likely option (first on ties)."""
    keys = [s.normalized if normalized else s.logprob for s in scores]
    return max(range(len(keys)), key=lambda i: (keys[i], -i))


# -- prompt-boundary healing ------------------------------------------------------------------
@dataclass(frozen=True)
class HealedGen:
    """Generate from the prompt without the last piece's trailing spaces; when the output
    starts with them (" I need..."), they belong to the output's first token."""

    prompt_ids: list[int]
    head_text: str  # the last piece without its trailing spaces
    spaces: str


def heal_gen(stream: Stream) -> HealedGen | None:
    head_ids, tail = stream.split_tail()
    head_text = tail.rstrip(" ")
    if not tail or head_text == tail:
        return None
    return HealedGen(head_ids + stream.encode_piece(head_text), head_text, tail[len(head_text) :])


@dataclass(frozen=True)
class HealedOptions:
    """Options scored as the last text piece + option tokenized together ("Action: " +
    "calculator" -> [":", " calculator"]), split after the part all of them share."""

    prompt_ids: list[int]
    continuations: list[list[int]]
    joined: list[list[int]]  # ids of tail + option, for the stream
    tail: str


def heal_options(stream: Stream, options: list[str]) -> HealedOptions | None:
    head_ids, tail = stream.split_tail()
    if not tail:
        return None
    base = stream.encode_piece(tail)
    joined = [stream.encode_piece(tail + option) for option in options]
    shared = min(common_prefix_len(base, j) for j in joined)
    continuations = [j[shared:] for j in joined]
    if not head_ids and not shared or any(not c for c in continuations):
        return None
    return HealedOptions(head_ids + base[:shared], continuations, joined, tail)
