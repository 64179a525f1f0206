"""`gen` and `select` against the engine: sampling parameters, constraints, values.

A constrained `gen` (a type, regex, choice, schema or `json`) sends its canonical regex to
the engine, which decodes under it (compressed FSM with jump-forward), so the text always
fullmatches it unless max_tokens runs out first (a `GenError`); the text is then parsed into
the gen's SGL type. `select` scores its options instead (`Engine.score`).

Prompt-boundary healing: a prompt whose last text piece ends in spaces ("Input: ") is sent
without them, so that they can be part of the output's first token (" 84"), as the model
was trained to see them. A constrained gen's regex then starts with those spaces, so the
engine forces them; a free gen that does not start with them keeps the spaces as written.
The spaces stay the prompt's: they are not part of the gen's value, and the engine is told
(`SamplingParams.healed_prefix`) to match stop strings only after them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sglc.ir import Gen
from sglc.lang import GEN_PARAMS, sampling_defaults
from sglc.runtime.core import InvalidRequest, SamplingParams
from sglc.runtime.executor.prompt_stream import PromptStream
from sglc.runtime.inputs import common_prefix_len


class GenParamError(Exception):
    """Gen parameters the engine cannot honour; the message is for the user."""


def sampling_params(params: Mapping[str, Any]) -> SamplingParams:
    """A gen's evaluated SGL params as engine SamplingParams, by the gen parameter table
    (sglc.lang.gen_params: each value's rule, its field, SGL's defaults)."""
    values: dict[str, Any] = dict(sampling_defaults())
    for name, value in params.items():
        param = GEN_PARAMS.get(name)
        if param is None:
            raise GenParamError(f"unknown gen parameter '{name}'")
        problem = param.error(value)
        if problem is None and param.unserved is not None and value is not None:
            problem = f"{name} {value!r}: {param.unserved}"
        if problem is not None:
            raise GenParamError(problem)
        if param.sampling_field is not None:
            values[param.sampling_field] = value
    try:
        return SamplingParams(**values)
    except InvalidRequest as exc:
        raise GenParamError(str(exc).removeprefix("invalid sampling params: ")) from None


def constrained_regex(regex: str, healed_spaces: str = "") -> str:
    """The regex the engine decodes a constrained gen under: spaces healed off the prompt
    come first (they belong to the output's first token), then the gen's canonical regex."""
    if not healed_spaces:
        return regex
    return f"{healed_spaces}(?:{regex})"


def program_regexes(program: Any) -> list[str]:
    """The regexes a program's gens may send to the engine: each canonical regex, and its
    form after healing one space (the common case, "Answer: " gen ...)."""
    regexes: dict[str, None] = {}
    for fn in program.functions.values():
        for block in fn.blocks:
            for instr in block.instrs:
                if isinstance(instr, Gen) and instr.regex is not None:
                    regexes[instr.regex] = None
                    regexes[constrained_regex(instr.regex, " ")] = None
    return list(regexes)


def describe_constraint(gen: Gen) -> str:
    c = gen.constraint
    if c.kind == "regex":
        return f"/{c.pattern}/"
    if c.kind == "choice":
        return " | ".join(f'"{x}"' for x in c.choices)
    if c.kind == "schema":
        return c.schema or "schema"
    if c.kind == "grammar":
        return "grammar(...)"
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


def heal_gen(stream: PromptStream) -> HealedGen | None:
    head_ids, tail = stream.split_tail()
    head_text = tail.rstrip(" ")
    if not tail or head_text == tail:
        return None
    return HealedGen(head_ids + stream.encode_piece(head_text), head_text, tail[len(head_text) :])


def healed_sampling(params: SamplingParams, regex: str | None,
                    healed: HealedGen | None, grammar: str | None = None) -> SamplingParams:
    """The params a gen is sent with: a constrained gen's regex (after the healed spaces),
    and the healed spaces as the engine's `healed_prefix`. They are the prompt's text: the
    engine matches stop strings only after them, so `stop=" "` cannot match the space
    healing moved into the output. A grammar gen is sent its `grammar` (it is not healed:
    its grammar says nothing of leading spaces). GenParamError if the params do not go
    together."""
    spaces = healed.spaces if healed is not None else ""
    changes: dict[str, str] = {"healed_prefix": spaces} if spaces else {}
    if regex is not None:  # the engine decodes under the constraint
        changes["regex"] = constrained_regex(regex, spaces)
    if grammar is not None:
        changes["grammar"] = grammar
    if not changes:
        return params
    try:
        return dataclasses.replace(params, **changes)
    except InvalidRequest as exc:
        raise GenParamError(str(exc).removeprefix("invalid sampling params: ")) from None


@dataclass(frozen=True)
class HealedOptions:
    """Options scored as the last text piece + option tokenized together ("Action: " +
    "calculator" -> [":", " calculator"]), split after the part all of them share."""

    prompt_ids: list[int]
    continuations: list[list[int]]
    joined: list[list[int]]  # ids of tail + option, for the stream
    tail: str


def heal_options(stream: PromptStream, options: list[str]) -> HealedOptions | None:
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
