"""Lowering of expressions: one method per AST expression node, each returning an Operand."""

from __future__ import annotations

from functools import singledispatchmethod

from sglc.frontend import ast as A
from sglc.frontend.symbols import BranchT, CheckedProgram, FnSig, FnT, ForkT
from sglc.ir.builder import FnBuilder
from sglc.ir.instructions import (
    Attr,
    BinOp,
    Branch,
    BuildDict,
    BuildList,
    Call,
    CallBuiltin,
    CallMethod,
    Compare,
    Const,
    Copy,
    Format,
    HostCall,
    Index,
    Instr,
    Jump,
    KwArgs,
    Operand,
    Pluck,
    Slice,
    UnaryOp,
    Var,
)
from sglc.lang import BUILTINS
from sglc.lang.types import NONE, BuiltinT, OptionalT, SchemaT, Type


class LoweringError(Exception):
    """A construct the IR cannot express; `span` says where (reported as a diagnostic)."""

    def __init__(self, message: str, span: A.Span) -> None:
        super().__init__(message)
        self.span = span


def qualified(sig: FnSig) -> str:
    return f"{sig.module}.{sig.name}"


class ExprLowerer:
    """Lowers expressions into `self.b` (a FnBuilder), reading types from the checker."""

    def __init__(self, checked: CheckedProgram, builder: FnBuilder) -> None:
        self.checked = checked
        self.b = builder

    def type_of(self, node: object) -> Type | None:
        return self.checked.types.get(node)

    def emit(self, instr: Instr) -> None:
        self.b.emit(instr)

    def copy_into(self, dest: str, value: Operand, span: A.Span) -> None:
        """`dest = value`, written straight into the instruction that made a fresh temp."""
        if not (isinstance(value, Var) and self.b.retarget_last(value.name, dest)):
            self.emit(Copy(dest, value, span=span))

    def into_temp(self, make: type, *fields: object, span: A.Span) -> Var:
        dest = self.b.temp()
        self.emit(make(dest, *fields, span=span))
        return Var(dest)

    # ---- the dispatch --------------------------------------------------------------------

    @singledispatchmethod
    def expr(self, e: A.Expr) -> Operand:
        raise LoweringError(f"cannot lower {type(e).__name__}", e.span)

    def constant(self, value: object, span: A.Span) -> Operand:
        """A module constant's value; lists and dicts are built anew each time."""
        if isinstance(value, list):
            items = tuple(self.constant(v, span) for v in value)
            return self.into_temp(BuildList, items, span=span)
        if isinstance(value, dict):
            keys = tuple(self.constant(k, span) for k in value)
            values = tuple(self.constant(v, span) for v in value.values())
            return self.into_temp(BuildDict, keys, values, span=span)
        return Const(value)  # type: ignore[arg-type]

    @expr.register
    def _(self, e: A.Name) -> Operand:
        const = self.checked.constants.get(e)
        return Var(e.id) if const is None else self.constant(const.value, e.span)

    @expr.register(A.Int)
    @expr.register(A.Float)
    @expr.register(A.Str)
    @expr.register(A.Bool)
    def _(self, e: A.Int | A.Float | A.Str | A.Bool) -> Operand:
        return Const(e.value)

    @expr.register
    def _(self, e: A.NoneLit) -> Operand:
        return Const(None)

    @expr.register
    def _(self, e: A.Regex) -> Operand:
        return Const(e.pattern)

    @expr.register
    def _(self, e: A.Template) -> Operand:
        parts = tuple(self.template_parts(e))
        return self.into_temp(Format, parts, span=e.span)

    def template_parts(self, e: A.Template) -> list[Operand]:
        return [Const(p) if isinstance(p, str) else self.expr(p) for p in e.parts]

    @expr.register
    def _(self, e: A.ListLit) -> Operand:
        items = tuple(self.expr(i) for i in e.items)
        return self.into_temp(BuildList, items, span=e.span)

    @expr.register
    def _(self, e: A.DictLit) -> Operand:
        keys: list[Operand] = []
        values: list[Operand] = []
        for k, v in e.items:
            keys.append(self.expr(k))
            values.append(self.expr(v))
        return self.into_temp(BuildDict, tuple(keys), tuple(values), span=e.span)

    @expr.register
    def _(self, e: A.BinOp) -> Operand:
        left = self.expr(e.left)
        right = self.expr(e.right)
        return self.into_temp(BinOp, e.op, left, right, span=e.span)

    @expr.register
    def _(self, e: A.UnaryOp) -> Operand:
        operand = self.expr(e.operand)
        return self.into_temp(UnaryOp, e.op, operand, span=e.span)

    @expr.register
    def _(self, e: A.BoolOp) -> Operand:
        """`a and b`: the first falsy operand, else the last (`or`: the first truthy)."""
        dest = self.b.temp()
        done = self.b.label("bool_end")
        for value in e.values[:-1]:
            self.copy_into(dest, self.expr(value), value.span)
            rest = self.b.label("bool_rhs")
            on_true, on_false = (rest, done) if e.op == "and" else (done, rest)
            self.emit(Branch(Var(dest), on_true, on_false, span=value.span))
            self.b.start(rest)
        last = e.values[-1]
        self.copy_into(dest, self.expr(last), last.span)
        self.b.start(done)
        return Var(dest)

    @expr.register
    def _(self, e: A.IfExp) -> Operand:
        dest = self.b.temp()
        then, orelse, done = (self.b.label(h) for h in ("if_then", "if_else", "if_end"))
        self.emit(Branch(self.expr(e.cond), then, orelse, span=e.cond.span))
        self.b.start(then)
        self.copy_into(dest, self.expr(e.then), e.then.span)
        self.emit(Jump(done, span=e.span))
        self.b.start(orelse)
        self.copy_into(dest, self.expr(e.orelse), e.orelse.span)
        self.b.start(done)
        return Var(dest)

    @expr.register
    def _(self, e: A.Compare) -> Operand:
        """Python chaining: `a < b < c` is `a < b and b < c` with b evaluated once."""
        left = self.expr(e.left)
        if len(e.ops) == 1:
            right = self.expr(e.comparators[0])
            return self.into_temp(Compare, e.ops[0], left, right, span=e.span)
        dest = self.b.temp()
        done = self.b.label("cmp_end")
        for i, (op, node) in enumerate(zip(e.ops, e.comparators, strict=True)):
            right = self.expr(node)
            self.emit(Compare(dest, op, left, right, span=e.span))
            if i < len(e.ops) - 1:
                rest = self.b.label("cmp_next")
                self.emit(Branch(Var(dest), rest, done, span=e.span))
                self.b.start(rest)
            left = right
        self.b.start(done)
        return Var(dest)

    @expr.register
    def _(self, e: A.Index) -> Operand:
        value = self.expr(e.value)
        index = self.expr(e.index)
        return self.into_temp(Index, value, index, span=e.span)

    @expr.register
    def _(self, e: A.Slice) -> Operand:
        value = self.expr(e.value)
        start = None if e.start is None else self.expr(e.start)
        stop = None if e.stop is None else self.expr(e.stop)
        return self.into_temp(Slice, value, start, stop, span=e.span)

    @expr.register
    def _(self, e: A.Attribute) -> Operand:
        const = self.checked.constants.get(e)
        if const is not None:  # module.CONSTANT
            return self.constant(const.value, e.span)
        owner = self.type_of(e.value)
        if isinstance(owner, BranchT):  # b.index inside the fork body: its first param
            return Var(f"{owner.name}.index")
        value = self.expr(e.value)
        make = Pluck if isinstance(owner, ForkT) else Attr
        return self.into_temp(make, value, e.attr, span=e.span)

    @expr.register
    def _(self, e: A.Call) -> Operand:
        func = self.type_of(e.func)
        built = self.type_of(e)
        if isinstance(func, SchemaT) and isinstance(built, SchemaT):
            return self.schema_value(built, e)
        if not isinstance(func, (FnT, BuiltinT)) and isinstance(e.func, A.Attribute):
            if e.kwargs:  # typed receivers are checked; a json one is only known at run time
                raise LoweringError("methods take their arguments by position",
                                    e.kwargs[0].name_span)
            owner = self.expr(e.func.value)
            args = tuple(self.expr(a) for a in e.args)
            return self.into_temp(CallMethod, owner, e.func.attr, args, span=e.span)
        if isinstance(func, BuiltinT):
            params = BUILTINS[func.name].params
            args = tuple(Const(a.id) if i < len(params) and params[i].form == "binding"
                         and isinstance(a, A.Name) else self.expr(a)
                         for i, a in enumerate(e.args))
        else:
            args = tuple(self.expr(a) for a in e.args)
        kwargs: KwArgs = tuple((k.name, self.expr(k.value)) for k in e.kwargs)
        if isinstance(func, FnT):
            make = HostCall if func.sig.node.is_extern else Call
            return self.into_temp(make, qualified(func.sig), args, kwargs, span=e.span)
        if isinstance(func, BuiltinT):
            return self.into_temp(CallBuiltin, func.name, args, kwargs, span=e.span)
        raise LoweringError("this call has no known callee", e.span)

    def schema_value(self, t: SchemaT, e: A.Call) -> Operand:
        """`Person(name=n, age=a)`: a dict in field order; a left-out optional field is
        None."""
        given = {k.name: k.value for k in e.kwargs}
        keys, values = [], []
        for name, field_type in t.info.fields.items():
            keys.append(Const(name))
            if name in given:
                values.append(self.expr(given[name]))
            elif isinstance(field_type, OptionalT) or field_type == NONE:
                values.append(Const(None))
            else:
                raise LoweringError(f"field '{name}' is missing", e.span)
        return self.into_temp(BuildDict, tuple(keys), tuple(values), span=e.span)


__all__ = ["ExprLowerer", "LoweringError", "qualified"]
