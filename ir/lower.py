"""Lowering: a CheckedProgram becomes an IRProgram, one method per AST statement node.

- Each fn becomes an IRFunction (`module.fn`); `extern fn`s become ExternSigs; schemas (and
  container types used as gen constraints) become JSON schemas.
- The bodies of `fork` and `parallel for` become functions of their own; their captures are
  the enclosing fn's variables the body may read before binding them (live at its entry).
- `requires` become `assert_spec` at entry; `ensures` become `assert_spec` before each
  `return`, with the returned value in the variable `result`.
- `break`/`continue` inside a role block close the turns opened inside the loop first.
- Gen constraints are recorded as written (a type's by `typed_constraint`, the checker's
  reading of it); the constraint pass fills in the regex.
- Module constants are inlined where they are read; `b.index` inside a fork body is the
  body's first param, named `b.index`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import singledispatchmethod
from typing import Any

from sglc.frontend import ast as A
from sglc.frontend.consts import NotConstant, constant_value
from sglc.frontend.flow import bound_names
from sglc.frontend.symbols import CheckedProgram, FnSig, ModuleInfo
from sglc.ir.analysis import live_in
from sglc.ir.builder import FnBuilder, Loop
from sglc.ir.instructions import (
    Append,
    AssertSpec,
    BinOp,
    Branch,
    BuildDict,
    CallBuiltin,
    Compare,
    Const,
    Constraint,
    Copy,
    Fork,
    Gen,
    Index,
    Jump,
    ParallelMap,
    Return,
    RoleBegin,
    RoleEnd,
    Select,
    SpecKind,
    ValueType,
    Var,
)
from sglc.ir.lower_expr import ExprLowerer, LoweringError, qualified
from sglc.ir.lower_gen import gen_constraint
from sglc.ir.lower_spec import spec_term
from sglc.ir.program import ExternSig, FnKind, IRFunction, IRProgram, Param
from sglc.ir.types import ANY, IRType, ir_type
from sglc.lang.schemas import schema_of
from sglc.lang.types import JSON, DictT, ListT, OptionalT, SchemaT, Type, is_gradual, is_str
from sglc.source import Diagnostic


@dataclass
class ProgramLowering:
    """What lowering collects across modules."""

    checked: CheckedProgram
    functions: dict[str, IRFunction] = field(default_factory=dict)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    externs: dict[str, ExternSig] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def module(self, info: ModuleInfo) -> None:
        for name, schema in info.schemas.items():
            self.schemas[name] = schema_of(schema)
        for sig in info.fns.values():
            try:
                self.fn(info, sig)
            except LoweringError as exc:
                self.diagnostics.append(Diagnostic("error", str(exc), exc.span, None, "lowering"))

    def fn(self, info: ModuleInfo, sig: FnSig) -> None:
        node = sig.node
        params = tuple(Param(p.name, self.ir_type(ps.type), *self.default(p.default), p.span)
                       for p, ps in zip(node.params, sig.params, strict=False))
        returns = self.ir_type(sig.returns)
        if node.is_extern:
            self.externs[qualified(sig)] = ExternSig(node.name, params, returns, node.doc,
                                                     node.span)
            return
        builder = FnBuilder(qualified(sig))
        FnLowerer(self, info, builder, node.ensures).body(node)
        defaults = tuple((kw.name, self.constant(kw.value)) for kw in node.defaults)
        self.functions[builder.name] = IRFunction(
            builder.name, params, returns, builder.finish(node.span), info.file,
            node.doc, "fn", (), node.span, defaults)

    def ir_type(self, t: Type) -> IRType:
        """The IR type of a signature's type; the schemas it names are registered, so that
        arguments can be checked against them."""
        if isinstance(t, SchemaT):
            self.schemas.setdefault(t.info.name, schema_of(t.info))
        for inner in _inner_types(t):
            self.ir_type(inner)
        return ir_type(t)

    def constant(self, e: A.Expr) -> Any:
        """The value of a constant expression (checked): a literal or a module constant."""
        const = self.checked.constants.get(e)
        try:
            return const.value if const is not None else constant_value(e)
        except NotConstant as exc:
            raise LoweringError("this must be a constant", exc.node.span) from None

    def default(self, e: A.Expr | None) -> tuple[Any, bool]:
        return (None, False) if e is None else (self.constant(e), True)

    def register_schema(self, name: str, schema: dict[str, Any]) -> str:
        """Put a JSON schema in the program under `name` (or `name#2`, ... when that name
        already holds another schema); returns the name used."""
        candidate, k = name, 1
        while self.schemas.get(candidate, schema) != schema:
            k += 1
            candidate = f"{name}#{k}"
        self.schemas[candidate] = schema
        return candidate

    def source_text(self, span: A.Span) -> str | None:
        lines = self.checked.sources.get(span.file, "").splitlines()
        if span.line != span.end_line or not 0 < span.line <= len(lines):
            return None
        return lines[span.line - 1][span.col - 1:span.end_col - 1]


def _inner_types(t: Type) -> tuple[Type, ...]:
    if isinstance(t, ListT):
        return (t.elem,)
    if isinstance(t, OptionalT):
        return (t.inner,)
    if isinstance(t, DictT):
        return (t.key, t.value)
    return ()


class FnLowerer(ExprLowerer):
    """Lowers one fn body (or one fork / parallel-for body) into a FnBuilder."""

    def __init__(self, program: ProgramLowering, info: ModuleInfo, builder: FnBuilder,
                 ensures: tuple[A.Ensures, ...] = ()) -> None:
        super().__init__(program.checked, builder)
        self.program = program
        self.info = info
        self.ensures = ensures

    def body(self, node: A.FnDef) -> None:
        for clause in node.requires:
            self.spec(clause.cond, "requires", clause.span)
        self.block(node.body)

    def block(self, stmts: tuple[A.Stmt, ...]) -> None:
        for s in stmts:
            self.stmt(s)

    def spec(self, cond: A.Expr, kind: SpecKind, span: A.Span, retries: int = 0) -> None:
        text = self.program.source_text(cond.span)
        message = Const(f"{kind} {text}") if text else None
        self.emit(AssertSpec(self.expr(cond), kind, message, self.spec_term(cond), retries,
                             span=span))

    def spec_term(self, cond: A.Expr) -> tuple:
        def constant(e: A.Expr) -> object:
            const = self.checked.constants.get(e)
            return const.value if const is not None else constant_value(e)

        return spec_term(cond, constant)

    def assign(self, dest: str, value: A.Expr) -> None:
        self.copy_into(dest, self.expr(value), value.span)

    # ---- statements ----------------------------------------------------------------------

    @singledispatchmethod
    def stmt(self, s: A.Stmt) -> None:
        raise LoweringError(f"cannot lower {type(s).__name__}", s.span)

    @stmt.register
    def _(self, s: A.ExprStmt) -> None:
        t = self.type_of(s.expr)
        if t is not None and (is_str(t) or is_gradual(t)):
            self.item(s.expr)
            return
        op = self.expr(s.expr)
        if isinstance(op, Var) and op.name.startswith("%"):
            self.b.retarget_last(op.name, None)

    @stmt.register
    def _(self, s: A.PromptStmt) -> None:
        for item in s.items:
            self.item(item)

    @stmt.register
    def _(self, s: A.Role) -> None:
        self.role(s.role, s.span, lambda: [self.item(i) for i in s.items])

    @stmt.register
    def _(self, s: A.RoleBlock) -> None:
        self.role(s.role, s.span, lambda: self.block(s.body))

    def role(self, role: str, span: A.Span, inside: Any) -> None:
        self.emit(RoleBegin(role, span=span))
        self.b.roles.append(role)
        inside()
        self.b.roles.pop()
        self.emit(RoleEnd(role, span=span))

    @stmt.register
    def _(self, s: A.Let) -> None:
        self.assign(s.name, s.value)

    @stmt.register
    def _(self, s: A.Assign) -> None:
        if s.op == "=":
            self.assign(s.name, s.value)
            return
        right = self.expr(s.value)
        self.emit(BinOp(s.name, s.op[0], Var(s.name), right, span=s.span))

    @stmt.register
    def _(self, s: A.If) -> None:
        then, orelse = self.b.label("then"), self.b.label("else")
        done = self.b.label("endif")
        self.emit(Branch(self.expr(s.cond), then, orelse if s.orelse else done, span=s.span))
        self.b.start(then)
        self.block(s.body)
        reaches_end = self.b.is_open
        if reaches_end:
            self.emit(Jump(done, span=s.span))
        if s.orelse:
            self.b.start(orelse)
            self.block(s.orelse)
            reaches_end = reaches_end or self.b.is_open
        if reaches_end or not s.orelse:
            self.b.start(done)

    @stmt.register
    def _(self, s: A.For) -> None:
        seq = self.b.temp()
        self.emit(CallBuiltin(seq, "list", (self.expr(s.iterable),), span=s.iterable.span))
        count, i = self.b.temp(), self.b.temp()
        self.emit(CallBuiltin(count, "len", (Var(seq),), span=s.span))
        self.emit(Copy(i, Const(0), span=s.span))
        head, body, done = (self.b.label(h) for h in ("for", "for_body", "for_end"))
        self.b.start(head)
        more = self.b.temp()
        self.emit(Compare(more, "<", Var(i), Var(count), span=s.span))
        self.emit(Branch(Var(more), body, done, span=s.span))
        self.b.start(body)
        self.emit(Index(s.var, Var(seq), Var(i), span=s.var_span))
        self.emit(BinOp(i, "+", Var(i), Const(1), span=s.span))
        self.loop_body(s.body, head, done)

    @stmt.register
    def _(self, s: A.While) -> None:
        head, body, done = (self.b.label(h) for h in ("while", "while_body", "while_end"))
        self.b.start(head)
        self.emit(Branch(self.expr(s.cond), body, done, span=s.cond.span))
        self.b.start(body)
        self.loop_body(s.body, head, done)

    def loop_body(self, stmts: tuple[A.Stmt, ...], head: str, done: str) -> None:
        self.b.loops.append(Loop(head, done, len(self.b.roles)))
        self.block(stmts)
        self.b.loops.pop()
        if self.b.is_open:
            self.emit(Jump(head))
        self.b.start(done)

    @stmt.register(A.Break)
    @stmt.register(A.Continue)
    def _(self, s: A.Break | A.Continue) -> None:
        if not self.b.loops:
            raise LoweringError("break/continue outside a loop", s.span)
        loop = self.b.loops[-1]
        for role in reversed(self.b.roles[loop.num_roles:]):
            self.emit(RoleEnd(role, span=s.span))
        target = loop.break_label if isinstance(s, A.Break) else loop.continue_label
        self.emit(Jump(target, span=s.span))

    @stmt.register
    def _(self, s: A.Return) -> None:
        value = Const(None) if s.value is None else self.expr(s.value)
        if self.ensures:
            self.copy_into("result", value, s.span)
            for clause in self.ensures:
                self.spec(clause.cond, "ensures", clause.span, clause.retries)
            value = Var("result")
        self.emit(Return(None if s.value is None else value, span=s.span))

    @stmt.register
    def _(self, s: A.Pass) -> None:
        return

    @stmt.register(A.Requires)
    @stmt.register(A.Ensures)
    def _(self, s: A.Requires | A.Ensures) -> None:
        raise LoweringError("requires/ensures must come at the start of the fn body", s.span)

    @stmt.register
    def _(self, s: A.Assert) -> None:
        message = None if s.message is None else self.expr(s.message)
        if message is None:
            text = self.program.source_text(s.cond.span)
            message = Const(f"assert {text}") if text else None
        self.emit(AssertSpec(self.expr(s.cond), "assert", message, self.spec_term(s.cond),
                             span=s.span))

    # ---- branches: fork and parallel for -------------------------------------------------

    @stmt.register
    def _(self, s: A.Fork) -> None:
        count = self.expr(s.count)
        outputs = bound_names(s.body)

        def tail(sub: FnLowerer) -> None:
            out = sub.b.temp()
            keys = tuple(Const(n) for n in outputs)
            sub.emit(BuildDict(out, keys, tuple(Var(n) for n in outputs), span=s.span))
            sub.emit(Return(Var(out), span=s.span))

        fn = self.branch_fn("fork", s.body, f"{s.name}.index", tail, outputs, s.span)
        captures = tuple(p.name for p in fn.params[1:])
        self.emit(Fork(s.name, count, fn.name, captures, s.join or "gather",  # type: ignore[arg-type]
                       span=s.span))

    @stmt.register
    def _(self, s: A.ParallelFor) -> None:
        items = self.expr(s.iterable)
        *head, last = s.body
        if not isinstance(last, A.ExprStmt):
            raise LoweringError("a parallel for body must end with its value", last.span)

        def tail(sub: FnLowerer) -> None:
            sub.emit(Return(sub.expr(last.expr), span=last.span))

        fn = self.branch_fn("map", tuple(head), s.var, tail, (), s.span)
        captures = tuple(p.name for p in fn.params[1:])
        self.emit(ParallelMap(s.name, items, fn.name, captures, span=s.span))

    def branch_fn(self, kind: str, body: tuple[A.Stmt, ...], item_var: str,
                  tail: Any, outputs: tuple[str, ...], span: A.Span) -> IRFunction:
        """Lower a branch body into its own function; its params are the item variable (a
        parallel for's item, a fork's branch index) and then the captures, the variables
        live at its entry."""
        sub = FnLowerer(self.program, self.info, FnBuilder(self.b.subfn_name(kind)))
        sub.b.roles = list(self.b.roles)  # a branch may start inside an open turn
        sub.block(body)
        if sub.b.is_open:
            tail(sub)
        first = (Param(item_var, ANY),)
        fn_kind: FnKind = "map_body" if kind == "map" else "fork_body"
        fn = IRFunction(sub.b.name, first, ANY, sub.b.finish(span), self.info.file, None,
                        fn_kind, outputs, span)
        live = live_in(fn).get(fn.blocks[0].label, set()) - {item_var}
        params = first + tuple(Param(name, ANY) for name in sorted(live))
        fn = IRFunction(fn.name, params, ANY, fn.blocks, fn.file, None, fn_kind, outputs, span)
        self.program.functions[fn.name] = fn
        return fn

    # ---- prompt items --------------------------------------------------------------------

    def item(self, item: A.PromptItem) -> None:
        if isinstance(item, A.Gen):
            self.gen(item)
        elif isinstance(item, A.Select):
            options = self.expr(item.options)
            params = tuple((k.name, self.expr(k.value)) for k in item.params)
            self.emit(Select(item.name, options, params, span=item.span))
        elif isinstance(item, A.Template):
            for part in item.parts:
                value = Const(part) if isinstance(part, str) else self.expr(part)
                self.emit(Append(value, span=item.span))
        else:
            self.emit(Append(self.expr(item), span=item.span))

    def gen(self, g: A.Gen) -> None:
        constraint, value_type = self.constraint(g)
        params = tuple((k.name, self.expr(k.value)) for k in g.params)
        self.emit(Gen(g.name, constraint, value_type, None, params, span=g.span))

    def constraint(self, g: A.Gen) -> tuple[Constraint, ValueType]:
        return gen_constraint(g, self.type_of(g) or JSON, self.checked,
                              self.program.register_schema)


def lower_program(checked: CheckedProgram) -> tuple[IRProgram, list[Diagnostic]]:
    """Lower a checked program (it must have no errors) to IR, before any pass."""
    lowering = ProgramLowering(checked)
    for info in checked.modules.values():
        lowering.module(info)
    main = checked.main
    module = main.name if main else ""
    entry = f"{module}.main" if f"{module}.main" in lowering.functions else None
    prog = IRProgram(lowering.functions, lowering.schemas, lowering.externs, entry, module)
    return prog, lowering.diagnostics


__all__ = ["LoweringError", "lower_program"]
