"""Parse tree -> typed AST, one method per grammar rule (or alias).

Prompt strings are split here: literal text has its escapes decoded, and each `{expr}` hole
is parsed with the same expression grammar (start rule `expr_only`) at its exact position.
"""

from __future__ import annotations

import inspect
from typing import Any

from lark import Token, Transformer, Tree, v_args

from sglc.frontend import ast as A
from sglc.frontend.templates import TemplateContext, TemplateReader, token_span
from sglc.source import DiagnosticSink

KEYWORDS = frozenset(
    "fn extern schema import as let parallel for in if elif else while fork return break "
    "continue pass gen select system user assistant requires ensures assert and or not "
    "with True False None grammar".split()
)
"""Reserved words. (`join` is a keyword only after a fork's name, so it stays a name.)"""


def build_module(trees: list[Tree], file: str, broken: list[str],
                 sink: DiagnosticSink) -> A.Module:
    """All parsed parts of one file as one Module (several trees after error recovery)."""
    builder = AstBuilder(file, sink)
    items: list[Any] = []
    for tree in trees:
        items.extend(builder.transform(tree))
    doc = None
    first = items[0] if items else None
    if isinstance(first, A.ExprStmt) and isinstance(first.expr, A.Str) and first.expr.is_triple:
        doc = inspect.cleandoc(first.expr.value)
        items.pop(0)
    imports = tuple(i for i in items if isinstance(i, A.Import))
    schemas = tuple(i for i in items if isinstance(i, A.SchemaDef))
    fns = tuple(i for i in items if isinstance(i, A.FnDef))
    consts = tuple(i for i in items if isinstance(i, A.Let))
    grammars = tuple(i for i in items if isinstance(i, A.GrammarDef))
    stmts = tuple(i for i in items
                  if not isinstance(i, (A.Import, A.SchemaDef, A.FnDef, A.Let, A.GrammarDef)))
    return A.Module(file, imports, schemas, fns, stmts, tuple(broken), doc, consts, grammars)


@v_args(meta=True)
class AstBuilder(Transformer):
    def __init__(self, file: str, sink: DiagnosticSink, line_offset: int = 0) -> None:
        super().__init__(visit_tokens=False)
        self.file = file
        self.sink = sink
        self.line_offset = line_offset  # for `{expr}` holes, parsed on their own

    # ---- helpers ---------------------------------------------------------------------

    def span(self, meta: Any) -> A.Span:
        if getattr(meta, "empty", True):
            return A.Span(self.file, 1, 1, 1, 2)
        off = self.line_offset
        return A.Span(self.file, meta.line + off, meta.column, meta.end_line + off,
                      meta.end_column)

    def block_span(self, meta: Any, last: Any) -> A.Span:
        """A compound statement ends where its last inner part ends (not at the dedent)."""
        return self.span(meta).to(last.span) if last is not None else self.span(meta)

    def tspan(self, tok: Token) -> A.Span:
        return token_span(tok, self.file, self.line_offset)

    def template_context(self) -> TemplateContext:
        def build_expr(tree: Tree, line_offset: int) -> A.Expr:
            return AstBuilder(self.file, self.sink, line_offset).transform(tree)

        return TemplateContext(self.file, self.line_offset, self.sink, build_expr)

    def ident(self, tok: Token) -> str:
        """A NAME token used as a name; keywords lexed as names in odd places are rejected."""
        if tok.value in KEYWORDS:
            self.sink.error(f"'{tok.value}' is a keyword and cannot be used as a name",
                            self.tspan(tok), f"choose another name, e.g. '{tok.value}_'",
                            "keyword-as-name")
        return str(tok.value)

    # ---- module and declarations -----------------------------------------------------

    def module(self, meta: Any, ch: list[Any]) -> list[Any]:
        items: list[Any] = []
        for c in ch:
            items.extend(c if isinstance(c, list) else [c])
        return items

    def expr_only(self, meta: Any, ch: list[Any]) -> Any:
        return ch[0]

    def dotted_name(self, meta: Any, ch: list[Token]) -> tuple[str, A.Span]:
        return ".".join(self.ident(t) for t in ch), self.span(meta)

    def import_name(self, meta: Any, ch: list[Any]) -> A.Import:
        (name, _), alias = ch
        return A.Import(name, None, self.ident(alias) if alias else None, self.span(meta))

    def import_path(self, meta: Any, ch: list[Any]) -> A.Import:
        path, alias = ch
        text = self.string_value(path)
        return A.Import(None, text, self.ident(alias) if alias else None, self.span(meta))

    def schema_def(self, meta: Any, ch: list[Any]) -> A.SchemaDef:
        name, doc, *fields = ch
        doc_text = inspect.cleandoc(self.string_value(doc)) if doc is not None else None
        return A.SchemaDef(self.ident(name), doc_text, tuple(fields),
                           self.block_span(meta, fields[-1]), self.tspan(name))

    def grammar_def(self, meta: Any, ch: list[Any]) -> A.GrammarDef:
        """NOTE: the grammar is a raw string, taken as written: Lark grammars are full of
        backslashes and braces (`/[0-9]{1,3}/`), which an ordinary string would read as
        escapes and `{...}` holes."""
        name, tok = ch
        raw = str(tok)
        body = raw.lstrip("rR")
        quote = body[:3] if body[:3] in ('"""', "'''") else body[0]
        opening = len(raw) - len(body) + len(quote)
        text = raw[opening:len(raw) - len(quote)]
        return A.GrammarDef(self.ident(name), text, self.span(meta), self.tspan(name),
                            tok.line + self.line_offset, tok.column + opening, body != raw)

    def field(self, meta: Any, ch: list[Any]) -> A.Field:
        name, type_ = ch
        return A.Field(self.ident(name), type_, self.span(meta), self.tspan(name))

    def extern_def(self, meta: Any, ch: list[Any]) -> A.FnDef:
        name, params, returns = ch
        return A.FnDef(self.ident(name), tuple(params or ()), returns, None, (), (), (),
                       self.span(meta), self.tspan(name), is_extern=True)

    def fn_def(self, meta: Any, ch: list[Any]) -> A.FnDef:
        """NOTE: the docstring rule: a first statement that is a triple-quoted string
        without `{}` holes is the docstring, never sent to the model (the checker warns
        when the lines after it build a raw prompt, where it may have been meant as one)."""
        name, params, returns, defaults, body = ch
        body = list(body)
        doc, doc_span = None, None
        first = body[0] if body else None
        if isinstance(first, A.ExprStmt) and isinstance(first.expr, A.Str) and first.expr.is_triple:
            doc, doc_span = inspect.cleandoc(first.expr.value), first.span
            body.pop(0)
        requires, ensures = [], []
        while body and isinstance(body[0], (A.Requires, A.Ensures)):
            clause = body.pop(0)
            (requires if isinstance(clause, A.Requires) else ensures).append(clause)
        span = self.block_span(meta, body[-1] if body else (requires + ensures or [None])[-1])
        return A.FnDef(self.ident(name), tuple(params or ()), returns, doc, tuple(requires),
                       tuple(ensures), tuple(body), span, self.tspan(name),
                       defaults=tuple(defaults or ()), doc_span=doc_span)

    def fn_defaults(self, meta: Any, ch: list[Any]) -> list[A.Keyword]:
        return list(ch)

    def fn_default(self, meta: Any, ch: list[Any]) -> A.Keyword:
        name, value = ch
        return A.Keyword(self.ident(name), value, self.span(meta), self.tspan(name))

    def params(self, meta: Any, ch: list[Any]) -> list[A.Param]:
        return [c for c in ch if c is not None]

    def param(self, meta: Any, ch: list[Any]) -> A.Param:
        name, type_, default = ch
        return A.Param(self.ident(name), type_, default, self.span(meta), self.tspan(name))

    # ---- types -----------------------------------------------------------------------

    def type(self, meta: Any, ch: list[Any]) -> A.TypeExpr:
        return ch[0] if len(ch) == 1 else A.TypeUnion(tuple(ch), self.span(meta))

    def type_name(self, meta: Any, ch: list[Any]) -> A.TypeName:
        (name, _), *args = ch
        bounds = tuple(a for a in args if isinstance(a, A.TypeBound))
        types = tuple(a for a in args if a is not None and not isinstance(a, A.TypeBound))
        return A.TypeName(name, types, self.span(meta), bounds)

    def type_bound(self, meta: Any, ch: list[Any]) -> A.TypeBound:
        name, sign, value = ch
        number = -int(value) if sign is not None and str(sign) == "-" else int(value)
        return A.TypeBound(str(name), number, self.span(meta))

    def type_literal(self, meta: Any, ch: list[Token]) -> A.TypeLiteral:
        return A.TypeLiteral(self.string_value(ch[0]), self.span(meta))

    def type_none(self, meta: Any, ch: list[Any]) -> A.TypeNone:
        return A.TypeNone(self.span(meta))

    # ---- statements ------------------------------------------------------------------

    def suite(self, meta: Any, ch: list[Any]) -> tuple[A.Stmt, ...]:
        return tuple(ch)

    def line_stmt(self, meta: Any, ch: list[Any]) -> A.Stmt:
        if len(ch) == 1 and not isinstance(ch[0], (A.Gen, A.Select)):
            return A.ExprStmt(ch[0], self.span(meta))
        return A.PromptStmt(tuple(ch), self.span(meta))

    def gen_clause(self, meta: Any, ch: list[Any]) -> A.Gen:
        name, constraint, args = ch
        pos, kws = self.split_args(args or [])
        return A.Gen(self.ident(name), constraint, kws, self.span(meta), self.tspan(name), pos)

    def constraint(self, meta: Any, ch: list[Any]) -> Any:
        return ch[0]

    def schema_ref(self, meta: Any, ch: list[Any]) -> A.SchemaRef:
        return A.SchemaRef(ch[0], self.span(meta))

    def grammar_ref(self, meta: Any, ch: list[Any]) -> A.GrammarRef:
        return A.GrammarRef(ch[0], self.span(meta))

    def select_clause(self, meta: Any, ch: list[Any]) -> A.Select:
        name, args, options = ch
        pos, kws = self.split_args(args or [])
        return A.Select(self.ident(name), options, self.span(meta), self.tspan(name), kws, pos)

    def let_stmt(self, meta: Any, ch: list[Any]) -> A.Let:
        name, type_, value = ch
        return A.Let(self.ident(name), type_, value, self.span(meta), self.tspan(name))

    def let_parallel(self, meta: Any, ch: list[Any]) -> A.ParallelFor:
        name, type_, var, iterable, body = ch
        return A.ParallelFor(self.ident(name), type_, self.ident(var), iterable, body,
                             self.block_span(meta, body[-1]), self.tspan(name), self.tspan(var))

    def assign_stmt(self, meta: Any, ch: list[Any]) -> A.Assign:
        name, value = ch
        return A.Assign(self.ident(name), "=", value, self.span(meta), self.tspan(name))

    def aug_assign_stmt(self, meta: Any, ch: list[Any]) -> A.Assign:
        name, op, value = ch
        return A.Assign(self.ident(name), str(op), value, self.span(meta), self.tspan(name))

    def role(self, meta: Any, ch: list[Token]) -> str:
        return str(ch[0])

    def role_stmt(self, meta: Any, ch: list[Any]) -> A.Role:
        return A.Role(ch[0], tuple(ch[1:]), self.span(meta))

    def role_block(self, meta: Any, ch: list[Any]) -> A.RoleBlock:
        return A.RoleBlock(ch[0], ch[1], self.block_span(meta, ch[1][-1]))

    def requires_stmt(self, meta: Any, ch: list[Any]) -> A.Requires:
        return A.Requires(ch[0], self.span(meta))

    def ensures_stmt(self, meta: Any, ch: list[Any]) -> A.Ensures:
        return A.Ensures(ch[0], self.span(meta), 0 if ch[1] is None else ch[1])

    def retry_clause(self, meta: Any, ch: list[Any]) -> int:
        return int(ch[1])

    def assert_stmt(self, meta: Any, ch: list[Any]) -> A.Assert:
        return A.Assert(ch[0], ch[1], self.span(meta))

    def return_stmt(self, meta: Any, ch: list[Any]) -> A.Return:
        return A.Return(ch[0] if ch else None, self.span(meta))

    def break_stmt(self, meta: Any, ch: list[Any]) -> A.Break:
        return A.Break(self.span(meta))

    def continue_stmt(self, meta: Any, ch: list[Any]) -> A.Continue:
        return A.Continue(self.span(meta))

    def pass_stmt(self, meta: Any, ch: list[Any]) -> A.Pass:
        return A.Pass(self.span(meta))

    def if_stmt(self, meta: Any, ch: list[Any]) -> A.If:
        cond, body, *elifs, orelse = ch
        tail: tuple[A.Stmt, ...] = orelse or ()
        for elif_cond, elif_body, elif_span in reversed(elifs):
            end = tail[-1].span if tail else elif_body[-1].span
            tail = (A.If(elif_cond, elif_body, tail, elif_span.to(end)),)
        return A.If(cond, body, tail, self.block_span(meta, (tail or body)[-1]))

    def elif_clause(self, meta: Any, ch: list[Any]) -> tuple[Any, Any, A.Span]:
        return ch[0], ch[1], self.span(meta)

    def for_stmt(self, meta: Any, ch: list[Any]) -> A.For:
        var, iterable, body = ch
        return A.For(self.ident(var), iterable, body, self.block_span(meta, body[-1]),
                     self.tspan(var))

    def while_stmt(self, meta: Any, ch: list[Any]) -> A.While:
        return A.While(ch[0], ch[1], self.block_span(meta, ch[1][-1]))

    def fork_stmt(self, meta: Any, ch: list[Any]) -> A.Fork:
        count, name, join, body = ch
        mode, mode_span = join if join is not None else (None, None)
        return A.Fork(count, self.ident(name), body, self.block_span(meta, body[-1]),
                      self.tspan(name), mode, mode_span)

    def fork_join(self, meta: Any, ch: list[Token]) -> tuple[str, A.Span]:
        return str(ch[1]), self.tspan(ch[1])

    # ---- expressions -----------------------------------------------------------------

    def if_expr(self, meta: Any, ch: list[Any]) -> A.IfExp:
        then, cond, orelse = ch
        return A.IfExp(cond, then, orelse, self.span(meta))

    def or_op(self, meta: Any, ch: list[Any]) -> A.BoolOp:
        return A.BoolOp("or", tuple(ch), self.span(meta))

    def and_op(self, meta: Any, ch: list[Any]) -> A.BoolOp:
        return A.BoolOp("and", tuple(ch), self.span(meta))

    def not_op(self, meta: Any, ch: list[Any]) -> A.UnaryOp:
        return A.UnaryOp("not", ch[0], self.span(meta))

    def compare(self, meta: Any, ch: list[Any]) -> A.Compare:
        return A.Compare(ch[0], tuple(ch[1::2]), tuple(ch[2::2]), self.span(meta))

    def comp_op(self, meta: Any, ch: list[Token]) -> str:
        return " ".join(str(t) for t in ch)

    def arith(self, meta: Any, ch: list[Any]) -> A.Expr:
        left = ch[0]
        for op, right in zip(ch[1::2], ch[2::2], strict=False):
            left = A.BinOp(str(op), left, right, left.span.to(right.span))
        return left

    def unary(self, meta: Any, ch: list[Any]) -> A.UnaryOp:
        return A.UnaryOp(str(ch[0]), ch[1], self.span(meta))

    def pow_op(self, meta: Any, ch: list[Any]) -> A.BinOp:
        return A.BinOp("**", ch[0], ch[2], self.span(meta))

    def call(self, meta: Any, ch: list[Any]) -> A.Call:
        func, args = ch
        pos, kws = self.split_args(args or [])
        return A.Call(func, pos, kws, self.span(meta))

    def split_args(self, args: list[Any]) -> tuple[tuple[A.Expr, ...], tuple[A.Keyword, ...]]:
        pos: list[A.Expr] = []
        kws: list[A.Keyword] = []
        for a in args:
            if isinstance(a, A.Keyword):
                kws.append(a)
            elif kws:
                self.sink.error("positional argument after keyword arguments", a.span,
                                "put positional arguments first", "positional-after-keyword")
            else:
                pos.append(a)
        return tuple(pos), tuple(kws)

    def args(self, meta: Any, ch: list[Any]) -> list[Any]:
        return [c for c in ch if c is not None]

    def pos_arg(self, meta: Any, ch: list[Any]) -> A.Expr:
        return ch[0]

    def kw_arg(self, meta: Any, ch: list[Any]) -> A.Keyword:
        name, value = ch
        return A.Keyword(self.ident(name), value, self.span(meta), self.tspan(name))

    def index(self, meta: Any, ch: list[Any]) -> A.Expr:
        value, (kind, *rest) = ch
        if kind == "index":
            return A.Index(value, rest[0], self.span(meta))
        return A.Slice(value, rest[0], rest[1], self.span(meta))

    def sub_index(self, meta: Any, ch: list[Any]) -> tuple[str, Any]:
        return ("index", ch[0])

    def sub_slice(self, meta: Any, ch: list[Any]) -> tuple[str, Any, Any]:
        return ("slice", ch[0], ch[1])

    def attribute(self, meta: Any, ch: list[Any]) -> A.Attribute:
        value, name = ch
        return A.Attribute(value, self.ident(name), self.span(meta), self.tspan(name))

    def name(self, meta: Any, ch: list[Token]) -> A.Name:
        return A.Name(self.ident(ch[0]), self.span(meta))

    def int_lit(self, meta: Any, ch: list[Token]) -> A.Int:
        return A.Int(int(ch[0]), self.span(meta))

    def float_lit(self, meta: Any, ch: list[Token]) -> A.Float:
        return A.Float(float(ch[0]), self.span(meta))

    def true_lit(self, meta: Any, ch: list[Any]) -> A.Bool:
        return A.Bool(True, self.span(meta))

    def false_lit(self, meta: Any, ch: list[Any]) -> A.Bool:
        return A.Bool(False, self.span(meta))

    def none_lit(self, meta: Any, ch: list[Any]) -> A.NoneLit:
        return A.NoneLit(self.span(meta))

    def list_lit(self, meta: Any, ch: list[Any]) -> A.ListLit:
        return A.ListLit(tuple(c for c in ch if c is not None), self.span(meta))

    def dict_lit(self, meta: Any, ch: list[Any]) -> A.DictLit:
        return A.DictLit(tuple(c for c in ch if c is not None), self.span(meta))

    def dict_item(self, meta: Any, ch: list[Any]) -> tuple[Any, Any]:
        return ch[0], ch[1]

    def regex(self, meta: Any, ch: list[Token]) -> A.Regex:
        return A.Regex(str(ch[0])[1:-1], self.span(meta))

    def string(self, meta: Any, ch: list[Token]) -> A.Str | A.Template:
        return TemplateReader(self.template_context(), ch[0]).read()

    def string_value(self, tok: Token) -> str:
        """A string that must be constant: holes are reported and left out."""
        node = TemplateReader(self.template_context(), tok).read()
        if isinstance(node, A.Template):
            self.sink.error("a constant string cannot contain {...}", node.span,
                            "write '{{' and '}}' for literal braces", "interpolation-in-constant")
            return "".join(p for p in node.parts if isinstance(p, str))
        return node.value
