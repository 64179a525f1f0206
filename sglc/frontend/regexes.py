"""Constraints as the checker sees them, judged by the constraints leaf (`sglc.constraints`),
so that `sglc check` accepts exactly what the IR pass and the engine accept and reports every
`ConstraintError` with a location:

- a regex literal `/.../` (a gen constraint or a `matches` pattern) against the dialect, at
  the column of the offending construct inside the literal;
- a typed gen constraint (a choice, a schema or container type, a bounded type, `json[T]`)
  turned into what the IR will compile (`typed_constraint`, which lowering uses too), at
  the constraint's span;
- a stop string that some text of the constraint contains (`stop_example`): the engine
  would stop the gen before its value is complete.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

import interegular

from sglc.constraints import Constraint, ConstraintError, RegexSyntaxError, check_pattern, to_regex
from sglc.constraints.canonical import ConstraintKind
from sglc.frontend import ast as A
from sglc.lang.schemas import json_schema
from sglc.lang.types import INT, JSON, PRIMS, STR, LiteralT, Prim, Type, is_gradual
from sglc.source import DiagnosticSink, Span

_MAX_STOP_REGEX = 4000  # longer constraint regexes (big schemas) are not searched for stops


def check_regex(node: A.Regex, sink: DiagnosticSink) -> bool:
    """Report a `/.../` literal outside the dialect; True when it is usable."""
    try:
        check_pattern(node.pattern)
    except ConstraintError as exc:
        span = node.span if exc.position is None else _char_span(node, exc.position)
        code = "invalid-regex" if isinstance(exc, RegexSyntaxError) else "unsupported-regex"
        sink.error(exc.message, span, exc.hint, code)
        return False
    return True


@dataclass(frozen=True)
class TypedConstraint:
    """What a gen constrained to a type compiles to: the IR's constraint fields, with a
    schema as its JSON schema (lowering registers it under a name)."""

    kind: ConstraintKind
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    schema: dict[str, Any] | None = None
    max_len: int | None = None

    def leaf(self) -> Constraint:
        schema = None if self.schema is None else json.dumps(self.schema)
        return Constraint(self.kind, pattern=self.pattern, choices=self.choices, schema=schema,
                          max_len=self.max_len)


_SCALAR_KINDS: dict[Type, ConstraintKind] = {STR: "str", INT: "int", PRIMS["float"]: "float",
                                             PRIMS["bool"]: "bool"}


def typed_constraint(t: Type, json_form: bool = False) -> TypedConstraint:
    """A gen constrained to type `t` (as JSON text when `json_form`: `gen x: json[str]`
    writes a quoted string): scalars as their literals, choices as one of their strings,
    bounded str as text of that length, everything else (and bounded int) as its schema."""
    if json_form:
        return TypedConstraint("json") if is_gradual(t) else \
            TypedConstraint("schema", schema=json_schema(t))
    bounds = t.bounds if isinstance(t, Prim) else None
    if t == STR and bounds is not None:
        if bounds.min is None:
            return TypedConstraint("str", max_len=bounds.max)
        high = "" if bounds.max is None else str(bounds.max)
        return TypedConstraint("regex", pattern=rf"[\s\S]{{{bounds.min},{high}}}")
    if t in _SCALAR_KINDS and bounds is None:
        return TypedConstraint(_SCALAR_KINDS[t])
    if isinstance(t, LiteralT):
        return TypedConstraint("choice", choices=t.values)
    if is_gradual(t) or t == JSON:
        return TypedConstraint("json")
    return TypedConstraint("schema", schema=json_schema(t))


def constraint_regex(c: TypedConstraint, span: Span, sink: DiagnosticSink) -> str | None:
    """The canonical regex of a typed constraint (None: any text, or an error reported)."""
    try:
        return to_regex(c.leaf())
    except ConstraintError as exc:
        where = "" if exc.pointer is None else f" (at {exc.pointer or 'the schema root'})"
        sink.error(f"this constraint has no regex: {exc.message}{where}", span, exc.hint,
                   "bad-constraint")
        return None


def check_gen_constraint(t: Type, span: Span, sink: DiagnosticSink) -> bool:
    """Report a typed gen constraint (checked type `t`, written at `span`) that has no
    canonical regex; True when it has one (or needs none)."""
    reported = len(sink.items)
    constraint_regex(typed_constraint(t), span, sink)
    return len(sink.items) == reported


def stop_example(regex: str, stop: str) -> str | None:
    """A text of the regex's language that contains `stop` (so a gen decoding under the
    regex could be stopped before its value is complete), or None when there is none or
    the regex is beyond this search (too long, or a construct interegular cannot read)."""
    if not stop or len(regex) > _MAX_STOP_REGEX:
        return None
    try:
        fsm = interegular.parse_pattern(regex).to_fsm()
    except Exception:  # noqa: BLE001 - interegular's own parse errors: no verdict
        return None
    step = _matcher(stop)
    classes = fsm.alphabet.by_transition
    start = (fsm.initial, 0)
    came: dict[tuple[Any, int], tuple[tuple[Any, int], str] | None] = {start: None}
    todo = deque([start])
    while todo:
        state, matched = todo.popleft()
        if matched == len(stop) and state in fsm.finals:
            return _path(came, (state, matched))
        for symbol, target in fsm.map.get(state, {}).items():
            for char in _representatives(classes.get(symbol, ()), stop):
                nxt = (target, matched if matched == len(stop) else step(matched, char))
                if nxt not in came:
                    came[nxt] = ((state, matched), char)
                    todo.append(nxt)
    return None


def _matcher(stop: str) -> Any:
    """KMP: how many chars of `stop` are matched after one more char."""
    fail = [0] * (len(stop) + 1)
    k = 0
    for i in range(1, len(stop)):
        while k and stop[i] != stop[k]:
            k = fail[k]
        k += stop[i] == stop[k]
        fail[i + 1] = k

    def step(matched: int, char: str) -> int:
        while matched and stop[matched] != char:
            matched = fail[matched]
        return matched + (stop[matched] == char)

    return step


def _representatives(chars: Any, stop: str) -> list[str]:
    """The chars of one transition class that can make a difference: those in `stop`, and
    one other (any char not in `stop` resets the match the same way)."""
    known = sorted(c for c in chars if isinstance(c, str))  # sorted: examples are stable
    out = [c for c in known if c in stop]
    other = next((c for c in known if c not in stop), None)
    if other is None and len(known) < len(chars):  # only "anything else" is left
        other = "\x00"
    if other is not None:
        out.append(other)
    return out


def _path(came: dict, end: tuple[Any, int]) -> str:
    chars: list[str] = []
    node = came[end]
    while node is not None:
        prev, char = node
        chars.append(char)
        node = came[prev]
    return "".join(reversed(chars))


def _char_span(node: A.Regex, pos: int) -> Span:
    s = node.span
    col = s.col + 1 + pos  # +1 skips the opening slash
    return Span(s.file, s.line, col, s.line, col + 1)


__all__ = ["TypedConstraint", "check_gen_constraint", "check_regex", "constraint_regex",
           "stop_example", "typed_constraint"]
