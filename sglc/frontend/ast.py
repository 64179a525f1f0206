"""The typed SGL syntax tree: frozen dataclasses, each node carrying its source span.

NOTE: nodes compare and hash by identity (`eq=False`), so a checker can key maps on them
(`CheckedProgram.types[expr]`). Compare fields, not nodes, in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sglc.source import Span

node = dataclass(frozen=True, eq=False)


# ---- types as written ---------------------------------------------------------------


@node
class TypeBound:
    """`max=40` in `str[max=40]`: a bound on a str's length, a list's size, an int's value."""

    name: str
    value: int
    span: Span


@node
class TypeName:
    """`str`, `Person`, `tools.Person`, `list[int]`, `dict[str, int]`, `json[str]`, with
    any bounds: `str[max=40]`, `list[int, max=3]`."""

    name: str
    args: tuple[TypeExpr, ...]
    span: Span
    bounds: tuple[TypeBound, ...] = ()


@node
class TypeLiteral:
    """A string literal used as a type: `"Paris"` (one member of a literal union)."""

    value: str
    span: Span


@node
class TypeNone:
    span: Span


@node
class TypeUnion:
    """`"a" | "b"` or `str | None`."""

    options: tuple[TypeExpr, ...]
    span: Span


TypeExpr = TypeName | TypeLiteral | TypeNone | TypeUnion


# ---- expressions --------------------------------------------------------------------


@node
class Name:
    id: str
    span: Span


@node
class Int:
    value: int
    span: Span


@node
class Float:
    value: float
    span: Span


@node
class Str:
    """A string literal without interpolation; `value` has escapes decoded."""

    value: str
    span: Span
    is_triple: bool = False


@node
class Template:
    """A prompt string with `{expr}` holes: parts are literal text or expressions."""

    parts: tuple[str | Expr, ...]
    span: Span


@node
class Bool:
    value: bool
    span: Span


@node
class NoneLit:
    span: Span


@node
class Regex:
    """A regex literal `/.../`; `pattern` is the text between the slashes, as written."""

    pattern: str
    span: Span


@node
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@node
class DictLit:
    items: tuple[tuple[Expr, Expr], ...]
    span: Span


@node
class BinOp:
    """Arithmetic: `+ - * / // % **`."""

    op: str
    left: Expr
    right: Expr
    span: Span


@node
class UnaryOp:
    """`-x`, `+x`, `not x`."""

    op: str
    operand: Expr
    span: Span


@node
class BoolOp:
    """`a and b and c` / `a or b`."""

    op: str
    values: tuple[Expr, ...]
    span: Span


@node
class Compare:
    """Chained comparison (Python semantics): `a < b <= c`; ops include `in`, `not in`."""

    left: Expr
    ops: tuple[str, ...]
    comparators: tuple[Expr, ...]
    span: Span


@node
class IfExp:
    cond: Expr
    then: Expr
    orelse: Expr
    span: Span


@node
class Keyword:
    name: str
    value: Expr
    span: Span
    name_span: Span


@node
class Call:
    func: Expr
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...]
    span: Span


@node
class Index:
    value: Expr
    index: Expr
    span: Span


@node
class Slice:
    value: Expr
    start: Expr | None
    stop: Expr | None
    span: Span


@node
class Attribute:
    value: Expr
    attr: str
    span: Span
    attr_span: Span


Expr = (
    Name | Int | Float | Str | Template | Bool | NoneLit | Regex | ListLit | DictLit | BinOp
    | UnaryOp | BoolOp | Compare | IfExp | Call | Index | Slice | Attribute
)


# ---- prompt items -------------------------------------------------------------------


@node
class SchemaRef:
    """`schema("person.json")` or `schema({...})`: a JSON schema as a gen constraint."""

    source: Expr
    span: Span


@node
class GrammarRef:
    """`grammar("sql.lark")` (a file next to the program) or `grammar(NAME)` (a `grammar`
    item): a context-free grammar as a gen constraint."""

    source: Expr
    span: Span


Constraint = TypeExpr | Regex | SchemaRef | GrammarRef


@node
class Gen:
    """`gen NAME[: constraint][(params)]`; the constraint is a type (or a module's regex
    constant, written as a type name), a regex literal or a schema reference."""

    name: str
    constraint: Constraint | None
    params: tuple[Keyword, ...]
    span: Span
    name_span: Span
    positional: tuple[Expr, ...] = ()


@node
class Select:
    """`select NAME[(params)] in OPTIONS`."""

    name: str
    options: Expr
    span: Span
    name_span: Span
    params: tuple[Keyword, ...] = ()
    positional: tuple[Expr, ...] = ()


PromptItem = Expr | Gen | Select


# ---- statements ---------------------------------------------------------------------


@node
class ExprStmt:
    """A line holding one expression; a str value is appended to the stream."""

    expr: Expr
    span: Span


@node
class PromptStmt:
    """A line of items appended in order: strings, gens, selects (`"A: " gen a`)."""

    items: tuple[PromptItem, ...]
    span: Span


@node
class Role:
    """`user "text" ...`: one role turn holding the items of the line."""

    role: str
    items: tuple[PromptItem, ...]
    span: Span


@node
class RoleBlock:
    """`assistant:` + a body: one role turn holding everything the body appends."""

    role: str
    body: tuple[Stmt, ...]
    span: Span


@node
class Let:
    name: str
    type: TypeExpr | None
    value: Expr
    span: Span
    name_span: Span


@node
class ParallelFor:
    """`let NAME = parallel for VAR in ITER:` + body; each item's value is the value of the
    body's last statement, which must be an expression line (not appended to the stream)."""

    name: str
    type: TypeExpr | None
    var: str
    iterable: Expr
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span
    var_span: Span


@node
class Assign:
    """`x = e` or `x += e` (op is `=`, `+=`, `-=`, `*=`, `/=`)."""

    name: str
    op: str
    value: Expr
    span: Span
    name_span: Span


@node
class If:
    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: Span


@node
class For:
    var: str
    iterable: Expr
    body: tuple[Stmt, ...]
    span: Span
    var_span: Span


@node
class While:
    cond: Expr
    body: tuple[Stmt, ...]
    span: Span


@node
class Fork:
    """`fork N as NAME [join MODE]:` + body. Inside the body `NAME.index` is the branch's
    number; after it `NAME.x` is the list of the branches' `x` and `NAME.text` their texts.
    `join` (None when not written): "gather" or "append" (each branch's text goes to the
    stream after the block), checked by the checker."""

    count: Expr
    name: str
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span
    join: str | None = None
    join_span: Span | None = None


@node
class Return:
    value: Expr | None
    span: Span


@node
class Break:
    span: Span


@node
class Continue:
    span: Span


@node
class Pass:
    span: Span


@node
class Requires:
    cond: Expr
    span: Span


@node
class Ensures:
    """`ensures COND [retry N]`; `result` names the return value inside COND; `retries`: how
    many times a failed check re-runs the fn (0: none)."""

    cond: Expr
    span: Span
    retries: int = 0


@node
class Assert:
    cond: Expr
    message: Expr | None
    span: Span


Stmt = (
    ExprStmt | PromptStmt | Role | RoleBlock | Let | ParallelFor | Assign | If | For | While
    | Fork | Return | Break | Continue | Pass | Requires | Ensures | Assert
)


# ---- declarations -------------------------------------------------------------------


@node
class Import:
    """`import tools`, `import tools as t`, `import "lib/x.sgl" as x`."""

    module: str | None
    path: str | None
    alias: str | None
    span: Span

    @property
    def bound_name(self) -> str:
        if self.alias:
            return self.alias
        if self.module:
            return self.module.split(".")[-1]
        return (self.path or "").rsplit("/", 1)[-1].removesuffix(".sgl")


@node
class Field:
    name: str
    type: TypeExpr
    span: Span
    name_span: Span


@node
class SchemaDef:
    name: str
    doc: str | None
    fields: tuple[Field, ...]
    span: Span
    name_span: Span


@node
class GrammarDef:
    """`grammar NAME: r"..."` (a raw string, usually triple-quoted): a grammar in Lark syntax.
    `text_line`/`text_col`: where its first character stands in the file (grammar errors are
    located from them)."""

    name: str
    text: str
    span: Span
    name_span: Span
    text_line: int
    text_col: int
    is_raw: bool = True  # only a raw string is a grammar (the checker reports the others)


@node
class Param:
    name: str
    type: TypeExpr | None
    default: Expr | None
    span: Span
    name_span: Span


@node
class FnDef:
    """`fn` (or `extern fn`, with `is_extern` and no body). The builder lifts a leading
    triple-quoted docstring and the leading `requires`/`ensures` clauses out of the body;
    `defaults` are the gen-parameter defaults of `with name=value, ...`."""

    name: str
    params: tuple[Param, ...]
    returns: TypeExpr | None
    doc: str | None
    requires: tuple[Requires, ...]
    ensures: tuple[Ensures, ...]
    body: tuple[Stmt, ...]
    span: Span
    name_span: Span
    is_extern: bool = False
    defaults: tuple[Keyword, ...] = ()
    doc_span: Span | None = None


@node
class Module:
    """A parsed file. `consts` are its top-level `let`s (module constants); `stmts` holds
    other statements written outside any fn (always an error)."""

    file: str
    imports: tuple[Import, ...]
    schemas: tuple[SchemaDef, ...]
    fns: tuple[FnDef, ...]
    stmts: tuple[Stmt, ...] = ()
    broken: tuple[str, ...] = field(default=())
    """Names of declarations that failed to parse (suppresses 'unknown name' follow-ups)."""
    doc: str | None = None
    consts: tuple[Let, ...] = ()
    grammars: tuple[GrammarDef, ...] = ()
