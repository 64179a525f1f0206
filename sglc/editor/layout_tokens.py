"""The formatter's view of a file: every token of the parse tree in order, each with the
rule it sits in, and every comment with its position.

The front end's parser drops punctuation and keywords from its trees; the formatter parses
the same grammar (grammar/sgl.lark, the same indentation postlexer) with `keep_all_tokens`,
so a rule it has never seen still prints every one of its tokens. Comments live in `_NL`
tokens, and the postlexer drops those inside brackets, so they are found in the source text
instead: a `#` outside every string and regex token runs to the end of its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from sglc.frontend.parser import Indenter, IndentError


@dataclass(frozen=True)
class Tok:
    """One token: `kind` is the terminal's name, `rule` the rule (or alias) holding it;
    `typed_param` marks the `=` of a parameter written with a type (`x: int = 1`)."""

    kind: str
    value: str
    rule: str
    line: int
    col: int
    end_line: int
    start: int
    end: int
    typed_param: bool = False

    @property
    def is_layout(self) -> bool:
        return self.kind in ("_NL", "_INDENT", "_DEDENT")


@dataclass(frozen=True)
class Comment:
    text: str
    line: int
    col: int
    start: int


class UnparsableSource(Exception):
    """The source does not parse; the front end's diagnostics say why."""


@lru_cache(maxsize=1)
def layout_parser() -> Lark:
    grammar = resources.files("sglc.grammar").joinpath("sgl.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", postlex=Indenter(),
                start="module", maybe_placeholders=True, keep_all_tokens=True)


def tokens_of(source: str) -> list[Tok]:
    """Every token of `source` in order (layout tokens included); UnparsableSource when it
    does not parse."""
    text = source if source.endswith("\n") else source + "\n"
    try:
        tree = layout_parser().parse(text)
    except (UnexpectedInput, IndentError) as exc:
        raise UnparsableSource(str(exc)) from None
    out: list[Tok] = []
    _walk(tree, out)
    return out


def _walk(tree: Tree, out: list[Tok]) -> None:
    rule = str(tree.data)
    typed = rule == "param" and any(isinstance(c, Token) and c.value == ":"
                                    for c in tree.children)
    for child in tree.children:
        if isinstance(child, Tree):
            _walk(child, out)
        elif isinstance(child, Token):
            out.append(_tok(child, rule, typed and child.value == "="))


def _tok(t: Token, rule: str, typed_param: bool) -> Tok:
    line = t.line or 0
    return Tok(t.type, str(t.value), rule, line, t.column or 0, t.end_line or line,
               t.start_pos if t.start_pos is not None else -1,
               t.end_pos if t.end_pos is not None else -1, typed_param)


def comments_of(source: str, tokens: list[Tok]) -> list[Comment]:
    """The comments of a parsed source: `#` to the end of the line, outside strings and
    regex literals."""
    literals = sorted((t.start, t.end) for t in tokens if t.kind in ("STRING", "REGEX"))
    found: list[Comment] = []
    i, k = 0, 0
    while True:
        i = source.find("#", i)
        if i < 0:
            return found
        while k < len(literals) and literals[k][1] <= i:
            k += 1
        if k < len(literals) and literals[k][0] <= i:
            i = literals[k][1]
            continue
        end = source.find("\n", i)
        end = len(source) if end < 0 else end
        line = source.count("\n", 0, i) + 1
        col = i - (source.rfind("\n", 0, i) + 1) + 1
        found.append(Comment(source[i:end].rstrip(), line, col, i))
        i = end
