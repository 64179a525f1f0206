"""A regex literal `/.../` (a gen constraint or a `matches` pattern) judged by the constraints
leaf's dialect (`sglc.constraints.check_pattern`), so that `sglc check` accepts exactly what
the IR pass and the engine accept, and reports each error at the column of the offending
construct inside the literal."""

from __future__ import annotations

from sglc.constraints import ConstraintError, RegexSyntaxError, check_pattern
from sglc.frontend import ast as A
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


def _char_span(node: A.Regex, pos: int) -> Span:
    s = node.span
    col = s.col + 1 + pos  # +1 skips the opening slash
    return Span(s.file, s.line, col, s.line, col + 1)


__all__ = ["check_regex"]
