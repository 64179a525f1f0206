"""Source locations and diagnostics: what the compiler reports about a program, and how
it is shown. A leaf: every stage may import it.

    file.sgl:3:9: error: unknown name 'questoin'
        user "Q: {questoin}"
                  ^~~~~~~~
      hint: did you mean 'question'?
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Span:
    """A source range: 1-based lines and columns; `end_col` is one past the last char."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to(self, other: Span) -> Span:
        """The span from the start of `self` to the end of `other`."""
        return Span(self.file, self.line, self.col, other.end_line, other.end_col)


Severity = Literal["error", "warning", "note"]
"""A note states a fact (a spec proven, or checked at run time only); it is no problem."""


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    message: str
    span: Span
    hint: str | None = None
    code: str = ""
    """A stable kebab-case kind (`unknown-name`, `syntax`, ...) for tools and tests."""
    data: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """Facts for tools, in the JSON form (the spec checks: outcome, counterexample, ...)."""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        s = self.span
        return {
            "file": s.file, "line": s.line, "col": s.col,
            "end_line": s.end_line, "end_col": s.end_col,
            "severity": self.severity, "code": self.code,
            "message": self.message, "hint": self.hint,
            **({"data": self.data} if self.data is not None else {}),
        }


class DiagnosticSink:
    """Collects diagnostics in the order they are found; checks keep going after errors."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, message: str, span: Span, hint: str | None = None, code: str = "") -> None:
        self.items.append(Diagnostic("error", message, span, hint, code))

    def warning(self, message: str, span: Span, hint: str | None = None, code: str = "") -> None:
        self.items.append(Diagnostic("warning", message, span, hint, code))

    def extend(self, diags: list[Diagnostic]) -> None:
        self.items.extend(diags)

    @property
    def has_errors(self) -> bool:
        return has_errors(self.items)


def has_errors(diags: list[Diagnostic]) -> bool:
    return any(d.is_error for d in diags)


def sort_key(diag: Diagnostic) -> tuple[str, int, int]:
    return (diag.span.file, diag.span.line, diag.span.col)


def render(diag: Diagnostic, source: str | None) -> str:
    """`file:line:col: severity: message`, the source line, a caret line, then the hint."""
    s = diag.span
    out = [f"{s.file}:{s.line}:{s.col}: {diag.severity}: {diag.message}"]
    lines = source.splitlines() if source is not None else []
    if source is not None and 1 <= s.line <= len(lines) + 1:
        text = lines[s.line - 1] if s.line <= len(lines) else ""
        out.append(text)
        out.append(_caret_line(text, s))
    if diag.hint:
        out.append(f"  hint: {diag.hint}")
    return "\n".join(out)


def _caret_line(text: str, span: Span) -> str:
    start = max(span.col - 1, 0)
    end = span.end_col - 1 if span.end_line == span.line else len(text)
    width = max(end - start, 1)
    # Keep tabs so the caret lines up under tab-indented code.
    pad = "".join("\t" if ch == "\t" else " " for ch in text[:start])
    pad += " " * (start - len(text[:start]))
    return pad + "^" + "~" * (width - 1)


def render_all(diags: list[Diagnostic], sources: dict[str, str]) -> str:
    """Every diagnostic rendered, separated by blank lines (sources keyed by file name)."""
    return "\n\n".join(render(d, sources.get(d.span.file)) for d in diags)


def to_json(diags: list[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diags], indent=2)
