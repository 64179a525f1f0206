"""Prompt strings: literal text (escapes decoded) and `{expr}` holes, each hole parsed with
the expression grammar at its exact position in the file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lark import Token, Tree

from sglc.frontend import ast as A
from sglc.frontend.parser import parse_expr_tree
from sglc.source import Diagnostic, DiagnosticSink

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", "'": "'", '"': '"',
            "{": "{", "}": "}", "\n": ""}


def shift(span: A.Span, lines: int) -> A.Span:
    if not lines:
        return span
    return A.Span(span.file, span.line + lines, span.col, span.end_line + lines, span.end_col)


def token_span(tok: Token, file: str, line_offset: int = 0) -> A.Span:
    line, col = tok.line or 1, tok.column or 1
    span = A.Span(file, line, col, tok.end_line or line, tok.end_column or col + 1)
    return shift(span, line_offset)


@dataclass(frozen=True)
class TemplateContext:
    """Where a string token stands: its file, the lines before the text it was parsed from
    (holes are parsed on their own), the sink, and how to build a hole's expression from its
    parse tree (given the hole's own line offset)."""

    file: str
    line_offset: int
    sink: DiagnosticSink
    build_expr: Callable[[Tree, int], A.Expr]


class TemplateReader:
    """Splits one STRING token into literal text and `{expr}` holes, with exact spans."""

    def __init__(self, context: TemplateContext, tok: Token) -> None:
        self.context, self.tok, self.value = context, tok, str(tok.value)
        raw = self.value[:1] in "rR"
        self.raw = raw
        body_start = int(raw)
        self.quote_len = 3 if self.value[body_start:body_start + 3] in ('"""', "'''") else 1
        self.start = body_start + self.quote_len
        self.end = len(self.value) - self.quote_len

    def position(self, i: int) -> tuple[int, int]:
        """(line, col) of self.value[i] in the file."""
        newlines = self.value.count("\n", 0, i)
        line = (self.tok.line or 1) + self.context.line_offset + newlines
        if not newlines:
            return line, (self.tok.column or 1) + i
        return line, i - self.value.rfind("\n", 0, i)

    def point(self, i: int, j: int | None = None) -> A.Span:
        line, col = self.position(i)
        end_line, end_col = self.position(j) if j is not None else (line, col + 1)
        return A.Span(self.context.file, line, col, end_line, end_col)

    def read(self) -> A.Str | A.Template:
        span = token_span(self.tok, self.context.file, self.context.line_offset)
        text = self.value[self.start:self.end]
        if self.raw:
            return A.Str(text, span, self.quote_len == 3)
        parts: list[str | A.Expr] = []
        buf: list[str] = []
        i = self.start
        while i < self.end:
            ch = self.value[i]
            if ch == "\\":
                i = self.escape(i, buf)
            elif self.value.startswith("{{", i) or self.value.startswith("}}", i):
                buf.append(ch)
                i += 2
            elif ch == "{":
                if buf:
                    parts.append("".join(buf))
                    buf = []
                i = self.hole(i, parts)
            elif ch == "}":
                self.context.sink.error("single '}' in a string", self.point(i),
                                        "write '}}' for a literal brace", "string-brace")
                i += 1
            else:
                buf.append(ch)
                i += 1
        if buf:
            parts.append("".join(buf))
        if all(isinstance(p, str) for p in parts):
            return A.Str("".join(parts), span, self.quote_len == 3)  # type: ignore[arg-type]
        return A.Template(tuple(parts), span)

    def escape(self, i: int, buf: list[str]) -> int:
        nxt = self.value[i + 1:i + 2]
        if nxt in _ESCAPES:
            buf.append(_ESCAPES[nxt])
            return i + 2
        width = {"x": 2, "u": 4, "U": 8}.get(nxt)
        digits = self.value[i + 2:i + 2 + width] if width else ""
        if width and len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
            code = int(digits, 16)
            buf.append(chr(code) if code <= 0x10FFFF else "\ufffd")
            return i + 2 + width
        buf.append("\\")
        return i + 1

    def hole(self, i: int, parts: list[str | A.Expr]) -> int:
        close, unclosed = self.find_close(i + 1)
        if close is None:
            self.context.sink.error("unclosed '{' in a string", self.point(i),
                                    "close the hole with '}', or write '{{' for a literal brace",
                                    "string-brace")
            return self.end
        if unclosed is not None:
            opener = self.value[unclosed]
            self.context.sink.error(f"'{opener}' was never closed", self.point(unclosed),
                                    f"close it with '{_PAIRS[opener]}' before the '}}'",
                                    "syntax")
            return close + 1
        inner = self.value[i + 1:close]
        if not inner.strip():
            self.context.sink.error("empty expression in '{}'", self.point(i, close + 1),
                                    "put a value inside, or write '{{}}' for literal braces",
                                    "string-brace")
            return close + 1
        line, col = self.position(i + 1)
        tree, diag = parse_expr_tree(inner, self.context.file, col)
        if diag is not None:
            hint = diag.hint or "a '{' in a string starts an interpolation; write '{{' for a brace"
            self.context.sink.items.append(
                Diagnostic(diag.severity, diag.message, shift(diag.span, line - 1), hint, diag.code))
            return close + 1
        parts.append(self.context.build_expr(tree, line - 1))
        return close + 1

    def find_close(self, k: int) -> tuple[int | None, int | None]:
        """(the index of the '}' that closes a hole starting at `k`, or None; the index of
        a bracket inside the hole that this '}' leaves open, or None)."""
        opened: list[int] = []
        quote = ""
        while k < self.end:
            c = self.value[k]
            if quote:
                if c == "\\":
                    k += 1
                elif c == quote:
                    quote = ""
            elif c in "\"'":
                quote = c
            elif c in _PAIRS:
                opened.append(k)
            elif c in ")]}":
                if not opened:
                    return (k, None) if c == "}" else (None, None)
                if _PAIRS[self.value[opened[-1]]] == c:
                    opened.pop()
                elif c == "}":
                    return k, opened[-1]
                else:
                    return None, None
            k += 1
        return None, None
