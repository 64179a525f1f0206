"""Constraints as the checker sees them, judged by the constraints leaf (`sglc.constraints`),
so that `sglc check` accepts exactly what the IR pass and the engine accept and reports every
`ConstraintError` with a location:

- a regex literal `/.../` (a gen constraint or a `matches` pattern) against the dialect, at
  the column of the offending construct inside the literal;
- a typed gen constraint (a choice, a schema or container type) turned into its regex the
  way the IR pass will, at the constraint's span.
"""

from __future__ import annotations

import json

from sglc.constraints import Constraint, ConstraintError, RegexSyntaxError, check_pattern, to_regex
from sglc.frontend import ast as A
from sglc.lang.schemas import json_schema
from sglc.lang.types import PRIMS, LiteralT, Type, is_gradual
from sglc.source import DiagnosticSink, Span


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


def check_gen_constraint(t: Type, span: Span, sink: DiagnosticSink) -> bool:
    """Report a typed gen constraint (checked type `t`, written at `span`) that has no
    canonical regex; True when it has one."""
    constraint = _leaf_constraint(t)
    if constraint is None:
        return True
    try:
        to_regex(constraint)
    except ConstraintError as exc:
        where = "" if exc.pointer is None else f" (at {exc.pointer or 'the schema root'})"
        sink.error(f"this constraint has no regex: {exc.message}{where}", span, exc.hint,
                   "bad-constraint")
        return False
    return True


def _leaf_constraint(t: Type) -> Constraint | None:
    """What the IR pass will compile for a gen constrained to `t` (None: a scalar, json or an
    unknown type, which always compile)."""
    if isinstance(t, LiteralT):
        return Constraint("choice", choices=t.values)
    if t in PRIMS.values() or is_gradual(t):
        return None
    return Constraint("schema", schema=json.dumps(json_schema(t)))


def _char_span(node: A.Regex, pos: int) -> Span:
    s = node.span
    col = s.col + 1 + pos  # +1 skips the opening slash
    return Span(s.file, s.line, col, s.line, col + 1)


__all__ = ["check_gen_constraint", "check_regex"]
