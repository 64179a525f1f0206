"""Static typing of expressions: literals, operators, indexing, calls (typed by calls.py);
what names and attributes stand for is names.py's."""

from __future__ import annotations

from functools import singledispatchmethod

from sglc.frontend import ast as A
from sglc.frontend.calls import bind_args, builtin_call_type, method_call_type, schema_call_type
from sglc.frontend.names import NameResolver, Scope
from sglc.frontend.regexes import check_regex
from sglc.frontend.symbols import (
    ConstInfo,
    FnSig,
    FnT,
    ModuleInfo,
    suggest,
)
from sglc.lang import BUILTINS
from sglc.lang.types import (
    BOOL,
    FLOAT,
    INT,
    JSON,
    NONE,
    REGEX,
    STR,
    UNKNOWN,
    BuiltinT,
    DictT,
    ListT,
    LiteralT,
    SchemaT,
    Type,
    assignable,
    element_type,
    is_gradual,
    is_numeric,
    is_str,
    join,
)
from sglc.source import DiagnosticSink


class ExprTyper(NameResolver):
    """Types expressions in the context of one module and one fn's scope."""

    def __init__(self, info: ModuleInfo, sink: DiagnosticSink, types: dict,
                 constants: dict[object, ConstInfo] | None = None) -> None:
        super().__init__(info, sink, constants)
        self.types = types

    # ---- entry ---------------------------------------------------------------------------

    def check(self, e: A.Expr) -> Type:
        t = self._check(e)
        self.types[e] = t
        return t

    def expect(self, e: A.Expr, want: Type, what: str) -> Type:
        got = self.check(e)
        if not assignable(got, want):
            self.sink.error(f"{what} must be {want}, not {got}", e.span,
                            self.conversion_hint(got, want), "type-mismatch")
        return got

    def conversion_hint(self, got: Type, want: Type) -> str | None:
        if want == STR and not is_str(got):
            return "convert with str(...), or interpolate: \"{x}\""
        if want in (INT, FLOAT) and is_str(got):
            return f"convert with {want}(...), or generate it typed: gen x: {want}"
        if isinstance(want, LiteralT) and got == STR:
            return "only these exact strings are allowed; a select or choice gen gives one"
        return None

    @singledispatchmethod
    def _check(self, e: A.Expr) -> Type:
        return UNKNOWN

    # ---- atoms ---------------------------------------------------------------------------

    @_check.register
    def _(self, e: A.Int) -> Type:
        return INT

    @_check.register
    def _(self, e: A.Float) -> Type:
        return FLOAT

    @_check.register
    def _(self, e: A.Bool) -> Type:
        return BOOL

    @_check.register
    def _(self, e: A.NoneLit) -> Type:
        return NONE

    @_check.register
    def _(self, e: A.Str) -> Type:
        return LiteralT((e.value,))

    @_check.register
    def _(self, e: A.Template) -> Type:
        for part in e.parts:
            if not isinstance(part, str):
                self.check(part)
        return STR

    @_check.register
    def _(self, e: A.Regex) -> Type:
        check_regex(e, self.sink)
        return REGEX

    @_check.register
    def _(self, e: A.Name) -> Type:
        return self.name_type(e.id, e.span, e)

    @_check.register
    def _(self, e: A.ListLit) -> Type:
        elem: Type = UNKNOWN
        for item in e.items:
            elem = join(elem, self.check(item))
        return ListT(JSON if elem == UNKNOWN and not e.items else elem)

    @_check.register
    def _(self, e: A.DictLit) -> Type:
        key: Type = UNKNOWN
        value: Type = UNKNOWN
        for k, v in e.items:
            key, value = join(key, self.check(k)), join(value, self.check(v))
        if not e.items:
            return DictT(STR, JSON)
        return DictT(STR if is_str(key) else key, value)

    # ---- operators -----------------------------------------------------------------------

    @_check.register
    def _(self, e: A.BinOp) -> Type:
        left, right = self.check(e.left), self.check(e.right)
        return self.binop(e.op, left, right, e.span)

    def binop(self, op: str, left: Type, right: Type, span: A.Span) -> Type:
        if is_gradual(left) or is_gradual(right):
            return JSON if not (left == UNKNOWN or right == UNKNOWN) else UNKNOWN
        if is_numeric(left) and is_numeric(right):
            if op == "/" or FLOAT in (left, right):
                return FLOAT
            return INT
        if op == "+" and is_str(left) and is_str(right):
            return STR
        if op == "+" and isinstance(left, ListT) and isinstance(right, ListT):
            return ListT(join(left.elem, right.elem))
        if op == "*" and (is_str(left) or isinstance(left, ListT)) and right == INT:
            return STR if is_str(left) else left
        hint = None
        if op == "+" and (is_str(left) or is_str(right)):
            hint = 'convert with str(...), or interpolate: "{a}{b}"'
        self.sink.error(f"unsupported operand types for {op}: {left} and {right}", span, hint,
                        "type-mismatch")
        return UNKNOWN

    @_check.register
    def _(self, e: A.UnaryOp) -> Type:
        t = self.check(e.operand)
        if e.op == "not":
            return BOOL
        if not (is_numeric(t) or is_gradual(t)):
            self.sink.error(f"unsupported operand type for unary {e.op}: {t}", e.span, None,
                            "type-mismatch")
            return UNKNOWN
        return INT if t == BOOL else t

    @_check.register
    def _(self, e: A.BoolOp) -> Type:
        result: Type = UNKNOWN
        for v in e.values:
            result = join(result, self.check(v))
        return result

    @_check.register
    def _(self, e: A.IfExp) -> Type:
        self.check(e.cond)
        return join(self.check(e.then), self.check(e.orelse))

    @_check.register
    def _(self, e: A.Compare) -> Type:
        left_node, left = e.left, self.check(e.left)
        for op, right_node in zip(e.ops, e.comparators, strict=False):
            right = self.check(right_node)
            self.compare(op, left, right, left_node, right_node, e.span)
            left_node, left = right_node, right
        return BOOL

    def compare(self, op: str, left: Type, right: Type, lnode: A.Expr, rnode: A.Expr,
                span: A.Span) -> None:
        if is_gradual(left) or is_gradual(right):
            return
        if op in ("in", "not in"):
            elem = element_type(right)
            if elem is None:
                self.sink.error(f"'{op}' needs a list, str or dict on the right, not {right}",
                                rnode.span, None, "type-mismatch")
            elif isinstance(elem, LiteralT):
                self.literal_overlap(left, elem, lnode)
            return
        if op in ("==", "!="):
            if isinstance(left, LiteralT) and isinstance(right, LiteralT):
                if isinstance(rnode, A.Str):
                    self.literal_overlap(right, left, rnode)
                elif isinstance(lnode, A.Str):
                    self.literal_overlap(left, right, lnode)
            return
        comparable = (is_numeric(left) and is_numeric(right)) or (is_str(left) and is_str(right))
        if not comparable:
            self.sink.error(f"cannot order {left} and {right} with '{op}'", span, None,
                            "type-mismatch")

    def literal_overlap(self, value: Type, domain: LiteralT, node: A.Expr) -> None:
        """Warn when a constant can never equal a value drawn from a fixed set of strings."""
        if not isinstance(value, LiteralT) or set(value.values) & set(domain.values):
            return
        shown = ", ".join(f'"{v}"' for v in domain.values)
        hint = suggest(value.values[0], domain.values) or f"the possible values are {shown}"
        self.sink.warning(f"this comparison is always False: the value is one of {shown}",
                          node.span, hint, "impossible-comparison")

    # ---- postfix -------------------------------------------------------------------------

    @_check.register
    def _(self, e: A.Index) -> Type:
        value, index = self.check(e.value), self.check(e.index)
        if is_gradual(value):
            return value
        if isinstance(value, ListT) or is_str(value):
            if not assignable(index, INT):
                self.sink.error(f"index must be int, not {index}", e.index.span, None,
                                "type-mismatch")
            return value.elem if isinstance(value, ListT) else STR
        if isinstance(value, DictT):
            if not assignable(index, value.key):
                self.sink.error(f"key must be {value.key}, not {index}", e.index.span, None,
                                "type-mismatch")
            return value.value
        hint = "read schema fields with '.name'" if isinstance(value, SchemaT) else None
        self.sink.error(f"{value} cannot be indexed", e.value.span, hint, "type-mismatch")
        return UNKNOWN

    @_check.register
    def _(self, e: A.Slice) -> Type:
        value = self.check(e.value)
        for bound in (e.start, e.stop):
            if bound is not None:
                self.expect(bound, INT, "a slice bound")
        if isinstance(value, LiteralT):
            return STR
        if not (isinstance(value, ListT) or value == STR or is_gradual(value)):
            self.sink.error(f"{value} cannot be sliced", e.value.span, None, "type-mismatch")
            return UNKNOWN
        return value

    @_check.register
    def _(self, e: A.Attribute) -> Type:
        value = self.check(e.value)
        return self.attribute(value, e)

    # ---- calls ---------------------------------------------------------------------------

    @_check.register
    def _(self, e: A.Call) -> Type:
        schema = self.schema_called(e.func)
        if schema is not None:
            self.types[e.func] = SchemaT(schema)  # lowering: a constructor, not a call
            return schema_call_type(self, schema, e)
        if isinstance(e.func, A.Attribute):
            owner = self.check(e.func.value)
            if self.method_names(owner):
                return method_call_type(self, owner, e.func, e)
            func = self.attribute(owner, e.func)
        else:
            func = self.check(e.func)
        self.types[e.func] = func
        if isinstance(func, FnT):
            return self.call_fn(func.sig, e)
        if isinstance(func, BuiltinT):
            return builtin_call_type(self, BUILTINS[func.name], e)
        for arg in [*e.args, *(k.value for k in e.kwargs)]:
            self.check(arg)
        if not is_gradual(func):
            hint = None
            if isinstance(e.func, A.Name) and e.func.id in BUILTINS:
                hint = f"'{e.func.id}' here is a variable, which hides the builtin " \
                       f"{e.func.id}(); rename the variable"
            self.sink.error(f"{func} is not callable", e.func.span, hint, "not-callable")
        return UNKNOWN

    def call_fn(self, sig: FnSig, e: A.Call) -> Type:
        bind_args(self, f"{sig.name}()", e, sig.params)
        return sig.returns


__all__ = ["ExprTyper", "Scope"]
