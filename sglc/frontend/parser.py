"""Source text -> Lark parse trees, with syntax errors turned into Diagnostics.

The grammar (grammar/sgl.lark) is loaded once through importlib.resources and the LALR
parser is cached. A file that fails to parse is parsed again one top-level declaration at a
time (each padded to its real line numbers), so one broken fn doesn't hide the errors or
the declarations of the others.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from sglc.source import Diagnostic, Span

OPENERS = {"LPAR", "LSQB", "LBRACE"}
CLOSERS = {"RPAR", "RSQB", "RBRACE"}


class IndentError(Exception):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


class Indenter:
    """Postlexer: indentation in _NL tokens -> _INDENT/_DEDENT; no newlines inside brackets."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        opened: list[Token] = []
        levels = [0]
        last = None
        for tok in stream:
            last = tok
            if tok.type in OPENERS:
                opened.append(tok)
            elif tok.type in CLOSERS:
                if opened:
                    opened.pop()
            elif tok.type == "_NL":
                if opened:
                    continue
                yield tok
                yield from self._indents(tok, levels)
                continue
            yield tok
        if opened:
            tok = opened[-1]
            raise IndentError(f"'{tok.value}' was never closed", tok.line or 1, tok.column or 1)
        while len(levels) > 1:
            levels.pop()
            yield Token.new_borrow_pos("_DEDENT", "", last) if last else Token("_DEDENT", "")

    def _indents(self, nl: Token, levels: list[int]) -> Iterator[Token]:
        indent = nl.value.rsplit("\n", 1)[-1]
        width = len(indent.expandtabs(8))
        line = (nl.line or 1) + nl.value.count("\n")
        col = len(indent) + 1
        if width > levels[-1]:
            levels.append(width)
            yield _synthetic("_INDENT", line, col)
            return
        while width < levels[-1]:
            levels.pop()
            yield _synthetic("_DEDENT", line, col)
        if width != levels[-1]:
            raise IndentError("unindent does not match any outer indentation level", line, col)


def _synthetic(kind: str, line: int, col: int) -> Token:
    return Token(kind, "", line=line, column=col, end_line=line, end_column=col + 1)


@lru_cache(maxsize=1)
def get_parser() -> Lark:
    grammar = resources.files("sglc.grammar").joinpath("sgl.lark").read_text(encoding="utf-8")
    return Lark(
        grammar, parser="lalr", lexer="contextual", postlex=Indenter(),
        start=["module", "expr_only"], propagate_positions=True, maybe_placeholders=True,
    )


@dataclass
class ParseResult:
    """Trees of the parts that parsed, syntax diagnostics, names declared by broken parts."""

    trees: list[Tree]
    diagnostics: list[Diagnostic]
    broken: list[str]


def parse_tree(source: str, filename: str) -> ParseResult:
    text = source if source.endswith("\n") else source + "\n"
    tree, diag = _try_parse(text, filename)
    if diag is None:
        return ParseResult([tree], [], [])
    trees, diags, broken = [], [], []
    for first_line, chunk in split_declarations(text):
        padded = "\n" * (first_line - 1) + chunk
        tree, diag = _try_parse(padded, filename)
        if diag is None:
            trees.append(tree)
        else:
            diags.append(diag)
            broken.extend(_declared_names(chunk))
    if not diags:  # the split parsed where the whole did not: report the first error
        diags.append(_try_parse(text, filename)[1])
    return ParseResult(trees, diags, broken)


def parse_expr_tree(text: str, filename: str, col: int) -> tuple[Tree | None,
                                                                 Diagnostic | None]:
    """Parse an interpolated `{expr}` whose first char sits at column `col` of its line.

    The text is padded with spaces and wrapped in parentheses (which also lets it span
    lines), so columns come out exact; line numbers count from 1 and the caller shifts them.
    """
    padded = " " * max(col - 2, 0) + "(" + text + ")"
    try:
        return get_parser().parse(padded, start="expr_only"), None
    except (UnexpectedInput, IndentError) as exc:
        if isinstance(exc, UnexpectedToken) and exc.token.type == "RPAR" and \
                exc.token.end_pos == len(padded):  # the ")" we added stands for the "}"
            line = padded.count("\n", 0, exc.token.start_pos) + 1
            column = exc.token.column or 1
            expected = describe_expected(set(exc.accepts or exc.expected) - {"RPAR"})
            message = "unexpected '}' (the end of the interpolation)"
            if expected:
                message += f"; expected {expected}"
            return None, Diagnostic("error", message,
                                    Span(filename, line, column, line, column + 1),
                                    "finish the expression before the '}'", "syntax")
        diag = syntax_diagnostic(exc, padded, filename)
        at = getattr(getattr(exc, "token", None), "start_pos", None)
        if at is not None and _open_parens(padded[:at]) == 1 and "; expected " in diag.message:
            head, _, tail = diag.message.partition("; expected ")  # ')' is the hole's '}'
            tail = tail.replace("')'", "'}'")
            diag = dataclasses.replace(diag, message=f"{head}; expected {tail}")
        return None, diag


def _open_parens(text: str) -> int:
    """How many '(' are open at the end of `text` (quotes skipped roughly)."""
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        else:
            depth += (ch == "(") - (ch == ")")
    return depth


def _try_parse(text: str, filename: str) -> tuple[Tree | None, Diagnostic | None]:
    try:
        return get_parser().parse(text, start="module"), None
    except (UnexpectedInput, IndentError) as exc:
        return None, syntax_diagnostic(exc, text, filename)


_DECL_RE = re.compile(r"(?:extern\s+)?(?:fn|schema)\s+([A-Za-z_]\w*)|import\s+.*\bas\s+(\w+)")


def _declared_names(chunk: str) -> list[str]:
    m = _DECL_RE.match(chunk.lstrip("\n"))
    if not m:
        return []
    return [m.group(1) or m.group(2)]


_DECL_START = re.compile(r"(fn|extern|schema|import)\b")


def split_declarations(text: str) -> list[tuple[int, str]]:
    """Top-level chunks: (first line, text), split where a line starts at column 0 outside
    any bracket or string (or with a declaration keyword, even inside an unclosed bracket).
    A rough scan; when unsure it makes bigger chunks."""
    starts = [1]
    depth, quote, line, at_line_start = 0, "", 1, True
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if at_line_start and not quote and line > 1 and ch not in " \t\r\n#" and (
                depth == 0 or _DECL_START.match(text, i)):
            starts.append(line)
            depth = 0  # a declaration keyword at column 0 ends any unclosed bracket
        at_line_start = False
        if quote:
            if ch == "\\":
                i += 1
            elif text.startswith(quote, i):
                i += len(quote) - 1
                quote = ""
            elif ch == "\n" and len(quote) == 1:
                quote = ""
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            i += len(quote) - 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        if i < n and text[i] == "\n":
            line += 1
            at_line_start = True
        i += 1
    lines = text.splitlines(keepends=True)
    bounds = [*sorted(set(starts)), len(lines) + 1]
    pairs = zip(bounds, bounds[1:], strict=False)
    return [(a, "".join(lines[a - 1:b - 1])) for a, b in pairs if a < b]


# ---- syntax errors -> diagnostics -----------------------------------------------------

_READABLE = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "REGEX": "a regex /.../", "_NL": "end of line", "_INDENT": "an indented block",
    "_DEDENT": "end of the block", "$END": "end of file", "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*'", "AUGOP": "'+='",
}
_OPERATORS = {"'=='", "'!='", "'<'", "'<='", "'>'", "'>='", "'in'", "'not'", "'+' or '-'", "'*'",
              "'**'", "'.'", "'and'", "'or'", "'if'", "'('", "'['"}
_EXPR_START = {"NAME", "INT", "FLOAT", "STRING", "REGEX", "LSQB", "LPAR", "LBRACE", "TRUE",
               "FALSE", "NONE", "NOT", "ADD_OP"}
_STMT_START = {"LET", "IF", "FOR", "WHILE", "FORK", "RETURN", "BREAK", "CONTINUE", "PASS",
               "GEN", "SELECT", "SYSTEM", "USER", "ASSISTANT", "ASSERT", "REQUIRES", "ENSURES"}


def readable(term: str) -> str:
    if term in _READABLE:
        return _READABLE[term]
    for t in get_parser().terminals:
        if t.name == term and t.pattern.type == "str":
            return f"'{t.pattern.value}'"
    return term.lower()


_OPTIONAL_CLAUSES = {"WITH", "JOIN", "RETRY"}  # `fn f() with ...:`, `fork 2 as b join ...:`: rarely meant


def describe_expected(expected: set[str]) -> str:
    names: list[str] = []
    rest = set(expected)
    if rest - _OPTIONAL_CLAUSES:
        rest -= _OPTIONAL_CLAUSES
    if {"NAME", "INT", "STRING", "LPAR"} <= rest:
        rest -= _EXPR_START
        names.append("an expression")
    if len(rest & _STMT_START) >= 6:
        rest -= _STMT_START
        names.insert(0, "a statement")
    shown = sorted(readable(t) for t in rest)
    operators = [n for n in shown if n in _OPERATORS]
    if len(operators) >= 4:
        shown = [n for n in shown if n not in _OPERATORS] + ["an operator"]
    names += shown
    if len(names) > 8:
        names = names[:8] + ["..."]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def syntax_diagnostic(exc: Exception, text: str, filename: str) -> Diagnostic:
    if isinstance(exc, IndentError):
        span = Span(filename, exc.line, exc.col, exc.line, exc.col + 1)
        hint = "indent with the same spaces as an enclosing block (don't mix tabs and spaces)"
        if "never closed" in exc.message:
            hint = "add the closing bracket"
        return Diagnostic("error", exc.message, span, hint, "syntax")
    if isinstance(exc, UnexpectedToken):
        return _unexpected_token(exc, text, filename)
    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_char(exc, text, filename)
    line, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    return Diagnostic("error", "invalid syntax", Span(filename, line, col, line, col + 1),
                      None, "syntax")


def _unexpected_token(exc: UnexpectedToken, text: str, filename: str) -> Diagnostic:
    tok = exc.token
    expected = set(exc.accepts or exc.expected)
    if tok.type == "$END":
        lines = text.splitlines() or [""]
        line, col, end = len(lines), len(lines[-1]) + 1, len(lines[-1]) + 2
    else:
        line, col = tok.line or 1, tok.column or 1
        end = tok.end_column if tok.end_line == tok.line and tok.end_column else col + 1
        end = max(end, col + 1)
    found = _describe_token(tok)
    message = f"unexpected {found}"
    if expected:
        message += f"; expected {describe_expected(expected)}"
    source_line = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
    hint = _hint_for(tok, expected, source_line)
    return Diagnostic("error", message, Span(filename, line, col, line, end), hint, "syntax")


def _describe_token(tok: Token) -> str:
    if tok.type == "NAME":
        return f"name '{tok.value}'"
    if tok.type in ("STRING", "INT", "FLOAT", "REGEX"):
        value = tok.value if len(tok.value) <= 30 else tok.value[:27] + "..."
        return f"{readable(tok.type)[2:] if tok.type != 'INT' else 'integer'} {value}"
    if tok.type in ("_INDENT", "_DEDENT"):
        return "indent" if tok.type == "_INDENT" else "dedent"
    if tok.type in _READABLE:
        return readable(tok.type)
    return f"'{tok.value}'"


def _hint_for(tok: Token, expected: set[str], source_line: str) -> str | None:
    stripped = source_line.lstrip()
    if stripped.startswith("def "):
        return "functions are declared with `fn`, e.g. `fn name(x: str) -> str:`"
    if tok.type == "EQUAL" and "EQ" in expected:
        return "use '==' to compare; '=' only assigns"
    if tok.type == "_INDENT":
        return "indent only the body of a line ending in ':'"
    if "_INDENT" in expected:
        return "the body of a block goes on the next lines, indented"
    if tok.type == "_NL" and "COLON" in expected:
        return "a line that opens a block ends with ':'"
    if tok.type in ("NAME", "INT", "FLOAT") and "GEN" in expected and "STRING" in expected:
        return 'put values into prompt text by interpolation: "Answer: {x}"'
    if tok.type == "NAME" and tok.value in ("elif", "else"):
        return f"'{tok.value}' must line up with its 'if'"
    if tok.type == "LPAR" and "COLON" in expected and stripped.startswith("gen "):
        return "write the constraint before the parameters: gen x: int(max_tokens=4)"
    if tok.type in CLOSERS:
        return "this bracket closes nothing that is open"
    return None


def _unexpected_char(exc: UnexpectedCharacters, text: str, filename: str) -> Diagnostic:
    line, col = exc.line, exc.column
    char = exc.char
    span = Span(filename, line, col, line, col + 1)
    if char in "\"'":
        source_line = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
        if source_line[max(col - 3, 0):col - 1] == char * 2:  # `"""` lexed as `""` + `"`
            return Diagnostic("error", f"unterminated {char * 3} string",
                              Span(filename, line, col - 2, line, col + 1),
                              f"close it with {char * 3}", "syntax")
        return Diagnostic("error", "unterminated string", span,
                          'close it on the same line, or use """...""" for text over lines',
                          "syntax")
    if char == "/":
        return Diagnostic("error", "unterminated regex literal", span,
                          "a regex literal /.../ ends on the same line; write \\/ for a slash",
                          "syntax")
    allowed = {t for t in (exc.allowed or ()) if not t.startswith("__")}
    message = f"unexpected character {char!r}"
    if allowed:
        message += f"; expected {describe_expected(allowed)}"
    hint = None
    if char == "$":
        hint = 'interpolate values in strings with braces: "Q: {question}"'
    elif char == "!":
        hint = "negate with `not`; compare with `!=`"
    elif char in "&|":
        hint = "use `and` / `or` for boolean logic"
    return Diagnostic("error", message, span, hint, "syntax")
