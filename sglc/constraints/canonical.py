"""One canonical regex per constraint: `to_regex(Constraint(...))`, the entry point of the IR's
constraint pass, the checker and the engine.

    int, float, bool   INT_REGEX, FLOAT_REGEX, BOOL_REGEX (what `sglc.ir.values` parses)
    str                None (any text), or [\\s\\S]{0,N} with a length bound
    regex              the pattern as written, once `check_pattern` accepts it
    choice             (a|b|c), each option escaped
    schema, json       outlines-core's regex of the JSON schema (`{}` for json), after
                       `regex_for_schema` checked and normalised it
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sglc.constraints.errors import ConstraintError
from sglc.constraints.literals import regex_for_choices
from sglc.constraints.regex import check_pattern
from sglc.constraints.schema import regex_for_schema

INT_REGEX = r"-?(0|[1-9][0-9]*)"
FLOAT_REGEX = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
BOOL_REGEX = r"(true|false)"
"""The canonical regexes of the scalar types: decimal literals, `true`/`false`."""

ConstraintKind = Literal["str", "int", "float", "bool", "regex", "choice", "schema", "json",
                         "grammar"]  # grammar: sglc.constraints.grammar, never a regex
Whitespace = Literal["compact", "flexible"]

_SCALARS = {"int": INT_REGEX, "float": FLOAT_REGEX, "bool": BOOL_REGEX}


@dataclass(frozen=True)
class Constraint:
    """What a generated text must be, self-contained and hashable.

    kind  str: any text (`max_len`, when set, bounds its length in characters); int, float,
          bool: their literals; regex: fullmatches `pattern`; choice: one of `choices`;
          schema: JSON valid against `schema` (the schema's JSON text: property order
          matters); json: any JSON value. `whitespace` between JSON tokens: "compact" (none)
          or "flexible" (one optional space).
    """

    kind: ConstraintKind
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    schema: str | None = None
    max_len: int | None = None
    whitespace: Whitespace = "compact"


def to_regex(constraint: Constraint) -> str | None:
    """The one canonical regex of a constraint (None: any text); ConstraintError (with the
    position in a regex or the JSON pointer in a schema) for anything outside the dialect
    and the schema subset."""
    kind = constraint.kind
    if constraint.max_len is not None and kind != "str":
        raise ConstraintError(f"a length bound applies to str, not {kind}")
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "str":
        return _bounded_text(constraint.max_len)
    if kind == "regex":
        if constraint.pattern is None:
            raise ConstraintError("a regex constraint needs a pattern")
        check_pattern(constraint.pattern)
        return constraint.pattern
    if kind == "choice":
        return regex_for_choices(constraint.choices)
    if kind == "schema":
        if constraint.schema is None:
            raise ConstraintError("a schema constraint needs a schema")
        return regex_for_schema(constraint.schema, constraint.whitespace)
    if kind == "json":
        return regex_for_schema({}, constraint.whitespace)
    raise ConstraintError(f"unknown constraint kind {kind!r}",
                          hint="str, int, float, bool, regex, choice, schema or json")


def _bounded_text(max_len: int | None) -> str | None:
    if max_len is None:
        return None
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
        raise ConstraintError(f"a length bound must be a non-negative integer, not {max_len!r}")
    return rf"[\s\S]{{0,{max_len}}}"


def request_regex(
    regex: str | None, json_schema: str | None, choices: Sequence[str] | None
) -> str | None:
    """The canonical regex of an engine request's constraint, given as `SamplingParams`
    spells it (regex, json_schema as JSON text, choices; the first one set wins; None:
    unconstrained). ConstraintError as `to_regex`."""
    if regex is not None:
        return to_regex(Constraint("regex", pattern=regex))
    if json_schema is not None:
        return to_regex(Constraint("schema", schema=json_schema))
    if choices is not None:
        return to_regex(Constraint("choice", choices=tuple(choices)))
    return None


__all__ = ["BOOL_REGEX", "FLOAT_REGEX", "INT_REGEX", "Constraint", "ConstraintKind",
           "Whitespace", "request_regex", "to_regex"]
