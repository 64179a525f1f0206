"""Regex literal validation: Python `re` syntax first (with the position inside the regex),
then the dialect constrained decoding and spec proofs support (via interegular)."""

from __future__ import annotations

import re

import interegular

from sglc.frontend import ast as A
from sglc.source import DiagnosticSink


def check_regex(node: A.Regex, sink: DiagnosticSink) -> bool:
    """Report problems with a `/.../` literal; True when it is usable."""
    try:
        re.compile(node.pattern)
    except re.error as exc:
        pos = exc.pos if exc.pos is not None else 0
        sink.error(f"invalid regex: {exc.msg}", _char_span(node, pos), _re_hint(exc.msg),
                   "invalid-regex")
        return False
    try:
        interegular.parse_pattern(node.pattern).to_fsm()
    except Exception as exc:  # interegular reports unsupported syntax with several types
        hint = "use plain regular syntax: classes, groups, alternation, repetition"
        if "'^'" in str(exc) or "'$'" in str(exc):
            hint = "a constraint always matches the whole value; drop the ^ and $ anchors"
        detail = str(exc) or type(exc).__name__
        sink.error(f"regex not supported for constrained decoding: {detail}", node.span, hint,
                   "unsupported-regex")
        return False
    return True


def _char_span(node: A.Regex, pos: int) -> A.Span:
    s = node.span
    col = s.col + 1 + pos  # +1 skips the opening slash
    return A.Span(s.file, s.line, col, s.line, col + 1)


def _re_hint(msg: str) -> str | None:
    if "unterminated character set" in msg:
        return "close the class with ']' (write \\] for a literal bracket)"
    if "missing )" in msg or "unbalanced parenthesis" in msg:
        return "balance the parentheses (write \\( or \\) for literal ones)"
    if "nothing to repeat" in msg or "multiple repeat" in msg:
        return "escape the quantifier character to match it literally, e.g. \\* or \\+"
    if "bad escape" in msg:
        return "remove the backslash or use a supported escape such as \\d, \\w, \\s, \\n"
    return None
