"""`sglc fmt`: SGL source laid out one way, from its parse tree.

    format_source(text, "agent.sgl") -> the formatted text      (FormatError if it can't)

What it does: 4-space indentation per block; one space around binary operators, `=`, `->`
and after commas and colons, none inside brackets, before a call's or an index's bracket,
around `.` and a keyword argument's `=`; comments kept (a trailing comment two spaces after
its code, an own-line comment at the depth of the code it belongs to); at most one blank
line in a row, exactly one around a top-level `fn` or `schema`, none at the start of a
block. Line breaks the author put inside brackets stay (continuation lines line up after
the bracket, or hang one level in when the bracket ends its line); nothing else is wrapped.
Strings and regex literals are kept byte for byte.

NOTE: every result is parsed again and must give the same AST as the input (spans aside);
otherwise format_source raises instead of returning text that means something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass

from sglc.editor.layout_tokens import (
    Comment,
    Tok,
    UnparsableSource,
    comments_of,
    tokens_of,
)
from sglc.frontend import Diagnostic, parse_source

INDENT = 4
OPENERS, CLOSERS = frozenset("([{"), frozenset(")]}")
# Rules whose bracket hugs what comes before it: f(x), gen g(...), select s(...), fn f(...),
# schema("p.json"), xs[0], list[T]
_TIGHT_OPEN = {"(": {"call", "gen_clause", "select_clause", "fn_def", "extern_def",
                     "schema_ref", "grammar_ref"},
               "[": {"index", "type_name"}}
# Rules whose `=` binds a name to a value with no spaces: f(x=1), fn f(x=1),
# fn f() with temperature=0.7, str[max=40]
_TIGHT_EQUALS = {"kw_arg", "fn_default", "type_bound"}
KNOWN_RULES = frozenset(
    "module expr_only import_name import_path schema_def field extern_def fn_def params param "
    "type type_name type_literal type_none dotted_name suite line_stmt gen_clause "
    "select_clause constraint let_stmt let_parallel assign_stmt aug_assign_stmt role_stmt "
    "role_block role requires_stmt ensures_stmt assert_stmt return_stmt break_stmt "
    "continue_stmt pass_stmt if_stmt elif_clause for_stmt while_stmt fork_stmt if_expr or_op "
    "and_op not_op compare comp_op arith unary pow_op call index attribute sub_index "
    "sub_slice args pos_arg kw_arg name int_lit float_lit string regex true_lit false_lit "
    "none_lit list_lit dict_lit dict_item atom "
    # rules that only ever appear under an alias, or inlined (`?rule`)
    "import_stmt type_atom expr or_expr and_expr not_expr comparison sum term factor power "
    "postfix subscript arg "
    # the language of issue 23: `fn f() with temperature=0.7:`, `str[max=40]`,
    # `gen x: schema("p.json")`, `fork 3 as b join append:`, `select x(temperature=1) in ...`
    "fn_defaults fn_default type_bound schema_ref fork_join "
    # issue 15: `ensures len(result) <= 40 retry 2`
    "retry_clause "
    # issue 25: `grammar SQL: r"""..."""` items and `gen q: grammar("sql.lark")`
    "grammar_def grammar_ref".split())
"""The grammar rules whose layout this module was written for. A rule outside it is still
printed (its tokens in order, spaced by the rules above), and tests/editor fail on it, so
that whoever adds it to the grammar decides its layout here."""


class FormatError(Exception):
    """The source cannot be formatted: `diagnostics` holds its syntax errors (empty when the
    formatter itself failed, which is a bug)."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


def format_source(source: str, filename: str = "<string>") -> str:
    """The formatted text of `source`; FormatError when it does not parse."""
    before, diags = parse_source(source, filename)
    if before is None:
        raise FormatError(f"{filename} has syntax errors", diags)
    try:
        toks = tokens_of(source)
    except UnparsableSource as exc:  # the front end parsed it: a bug of ours
        raise FormatError(f"internal error: {exc}") from None
    text = Layout(source, toks, comments_of(source, toks)).render()
    after, _ = parse_source(text, filename)
    if after is None or ast_shape(after) != ast_shape(before):
        raise FormatError(f"internal error: formatting {filename} would change its meaning; "
                          "the file is left as it is (please report it)")
    return text


def ast_shape(node: object) -> object:
    """An AST as plain data without spans, for comparing two parses."""
    if is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__, *(ast_shape(getattr(node, f.name)) for f in fields(node)
                                       if not f.name.endswith("span")))
    if isinstance(node, (list, tuple)):
        return tuple(ast_shape(x) for x in node)
    return node


# ---- spacing between two tokens of one line -----------------------------------------------


def space_between(a: Tok, b: Tok) -> str:
    if a.value in OPENERS or b.value in CLOSERS or b.value in (",", ":", ".") or a.value == ".":
        return ""
    if a.value == ":" and a.rule == "sub_slice":
        return ""
    if b.value in _TIGHT_OPEN and b.rule in _TIGHT_OPEN[b.value]:
        return ""
    if a.kind == "ADD_OP" and a.rule in ("unary", "type_bound"):
        return ""
    if any(t.value == "=" and (t.rule in _TIGHT_EQUALS or (t.rule == "param" and not t.typed_param))
           for t in (a, b)):
        return ""
    return " "


# ---- lines --------------------------------------------------------------------------------


@dataclass
class Line:
    """One logical line of the output: code (possibly over several physical lines inside
    brackets) or an own-line comment."""

    depth: int
    first: int  # source lines it came from
    last: int
    is_comment: bool = False
    starts_item: bool = False  # a top-level fn or schema header
    physical: list[str] = field(default_factory=list)


@dataclass
class Bracket:
    line_indent: int  # indentation of the physical line holding the bracket
    after_col: int  # output column right after it
    aligned: bool | None = None  # content starts on the bracket's line (None: not seen yet)


class Layout:
    """Lays out the token stream: a logical line per `_NL`, depth from `_INDENT`/`_DEDENT`,
    comments put back where they were."""

    def __init__(self, source: str, toks: list[Tok], comments: list[Comment]) -> None:
        self.source_lines = source.splitlines()
        self.toks = toks
        self.comments = comments
        self.next_comment = 0
        self.lines: list[Line] = []
        self.depth = 0
        self.indent_widths: list[int] = [0]  # source indentation of each open block
        self.prev_code_depth = 0
        self.pending: list[Comment] = []  # own-line comments waiting for their depth
        self.cur: Line | None = None
        self.parts: list[str] = []  # the physical line being built
        self.col = 0
        self.prev: Tok | None = None
        self.brackets: list[Bracket] = []
        self.trailing: str | None = None

    def render(self) -> str:
        for tok in self.toks:
            if tok.kind == "_INDENT":
                self.depth += 1
            elif tok.kind == "_DEDENT":
                self.depth -= 1
            elif tok.kind == "_NL":
                self.take_comments(tok.end)
                self.end_line()
            else:
                self.take_comments(tok.start)
                self.add(tok)
        self.take_comments(len("\n".join(self.source_lines)) + 1)
        self.end_line()
        self.flush_pending(0)
        return render_lines(self.lines)

    # ---- comments ------------------------------------------------------------------------

    def take_comments(self, before: int) -> None:
        while self.next_comment < len(self.comments) and \
                self.comments[self.next_comment].start < before:
            c = self.comments[self.next_comment]
            self.next_comment += 1
            if self.cur is not None and self.prev is not None and c.line == self.prev.end_line:
                self.trailing = c.text
            elif self.cur is not None and self.brackets:
                self.break_physical()
                self.parts = [" " * self.continuation(None), c.text]
                self.break_physical()
                self.cur.last = c.line
            else:
                self.end_line()
                self.pending.append(c)

    def flush_pending(self, depth_after: int) -> None:
        """Own-line comments before a line at `depth_after` (or the end of the file)."""
        for c in self.pending:
            depth = depth_after
            if depth_after < self.prev_code_depth:
                width = self.width_at(c.line, c.col)
                fits = [k for k in range(depth_after, self.prev_code_depth + 1)
                        if k < len(self.indent_widths) and self.indent_widths[k] <= width]
                depth = fits[-1] if fits else depth_after
            line = Line(depth, c.line, c.line, is_comment=True)
            line.physical.append(" " * (INDENT * depth) + c.text)
            self.lines.append(line)
        self.pending = []

    def width_at(self, line: int, col: int) -> int:
        text = self.source_lines[line - 1] if line <= len(self.source_lines) else ""
        return len(text[:col - 1].expandtabs(8))

    # ---- code ----------------------------------------------------------------------------

    def add(self, tok: Tok) -> None:
        if self.cur is None:
            self.start_line(tok)
        elif self.brackets and tok.line > (self.prev.end_line if self.prev else tok.line):
            if self.parts:
                self.break_physical()
            self.parts = [" " * self.continuation(tok)]
            self.col = len(self.parts[0])
        else:
            assert self.prev is not None
            gap = space_between(self.prev, tok) if self.parts and self.parts[-1].strip() else ""
            self.parts.append(gap)
            self.col += len(gap)
        if self.brackets and self.brackets[-1].aligned is None:
            self.brackets[-1].aligned = tok.line == (self.prev.end_line if self.prev else 0)
        self.parts.append(tok.value)
        self.col = self.col + len(tok.value) if "\n" not in tok.value else \
            len(tok.value.rsplit("\n", 1)[1])
        if tok.value in OPENERS and tok.kind != "STRING":
            self.brackets.append(Bracket(len(self.parts[0]), self.col))
        elif tok.value in CLOSERS and tok.kind != "STRING" and self.brackets:
            self.brackets.pop()
        assert self.cur is not None
        self.cur.last = max(self.cur.last, tok.end_line)
        self.prev = tok

    def start_line(self, tok: Tok) -> None:
        self.flush_pending(self.depth)
        width = self.width_at(tok.line, tok.col)
        del self.indent_widths[self.depth:]
        self.indent_widths.extend([width] * (self.depth + 1 - len(self.indent_widths)))
        self.prev_code_depth = self.depth
        self.cur = Line(self.depth, tok.line, tok.end_line,
                        starts_item=self.depth == 0 and tok.value in ("fn", "schema"))
        self.parts = [" " * (INDENT * self.depth)]
        self.col = INDENT * self.depth
        self.prev = None

    def continuation(self, tok: Tok | None) -> int:
        b = self.brackets[-1]
        if tok is not None and tok.value in CLOSERS and tok.kind != "STRING":
            return b.line_indent
        return b.after_col if b.aligned else b.line_indent + INDENT

    def break_physical(self) -> None:
        assert self.cur is not None
        text = "".join(self.parts).rstrip()
        if self.trailing:
            text += "  " + self.trailing
            self.trailing = None
        if text.strip():
            self.cur.physical.append(text)
        self.parts = []

    def end_line(self) -> None:
        if self.cur is None:
            return
        self.break_physical()
        self.lines.append(self.cur)
        self.cur, self.prev, self.brackets = None, None, []


# ---- blank lines --------------------------------------------------------------------------


def render_lines(lines: list[Line]) -> str:
    out: list[str] = []
    for i, line in enumerate(lines):
        if i:
            out.extend([""] * blank_lines(lines, i))
        out.extend(line.physical)
    return "\n".join(out) + "\n" if out else ""


def blank_lines(lines: list[Line], i: int) -> int:
    line, prev = lines[i], lines[i - 1]
    kept = min(max(line.first - prev.last - 1, 0), 1)
    if line.depth > prev.depth:
        return 0
    if line.depth > 0:
        return kept
    if prev.depth > 0 or prev.starts_item:
        return 1
    leads_item = _leads_item(lines, i)
    if leads_item is not None:
        # a comment run glued to the fn/schema below it takes the blank line above itself
        attached = prev.is_comment and prev.first >= line.first - 1 and \
            _leads_item(lines, i - 1) == leads_item
        return 0 if attached else 1
    return kept


def _leads_item(lines: list[Line], i: int) -> int | None:
    """The index of the top-level fn/schema header that line i is (or whose comment run,
    with no blank line in it, line i is part of)."""
    j = i
    while j < len(lines) and lines[j].depth == 0 and lines[j].is_comment:
        if j + 1 < len(lines) and lines[j + 1].first > lines[j].last + 1:
            return None
        j += 1
    if j < len(lines) and lines[j].starts_item and lines[j].depth == 0:
        return j
    return None
