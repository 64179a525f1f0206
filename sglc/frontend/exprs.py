"""Static typing of expressions: names, operators, attributes; calls are typed by calls.py."""

from __future__ import annotations

from functools import singledispatchmethod

from sglc.frontend import ast as A
from sglc.frontend.calls import bind_args, builtin_call_type, method_call_type, schema_call_type
from sglc.frontend.regexes import check_regex
from sglc.frontend.symbols import (
    BranchT,
    ConstInfo,
    FnSig,
    FnT,
    ForkT,
    ModuleInfo,
    ModuleT,
    Var,
    suggest,
)
from sglc.lang import BUILTINS, NAMESPACES, methods_of, receiver_kind
from sglc.lang.types import (
    BOOL,
    FLOAT,
    INT,
    JSON,
    NONE,
    REGEX,
    STR,
    UNKNOWN,
    BindingT,
    BuiltinT,
    DictT,
    ListT,
    LiteralT,
    NamespaceT,
    OptionalT,
    SchemaInfo,
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


class Scope:
    """Local bindings of one fn: a stack of layers (a fork / parallel-for branch pushes one)."""

    def __init__(self) -> None:
        self.layers: list[dict[str, Var]] = [{}]

    def lookup(self, name: str) -> tuple[Var, int] | None:
        for depth in range(len(self.layers) - 1, -1, -1):
            if name in self.layers[depth]:
                return self.layers[depth][name], depth
        return None

    def names(self) -> list[str]:
        return [n for layer in self.layers for n in layer]


class ExprTyper:
    """Types expressions in the context of one module and one fn's scope."""

    def __init__(self, info: ModuleInfo, sink: DiagnosticSink, types: dict,
                 constants: dict[object, ConstInfo] | None = None) -> None:
        self.info = info
        self.sink = sink
        self.types = types
        self.constants: dict[object, ConstInfo] = {} if constants is None else constants
        self.scope = Scope()
        self.result_type: Type | None = None  # bound to `result` inside `ensures`
        self.used_imports: set[str] = set()

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

    def name_type(self, name: str, span: A.Span, node: A.Expr | None = None) -> Type:
        found = self.scope.lookup(name)
        if found:
            found[0].used = True
            return found[0].type
        if name == "result" and self.result_type is not None:
            return self.result_type
        if name in self.info.consts:
            const = self.info.consts[name]
            if node is not None:
                self.constants[node] = const
            return const.type
        if name in self.info.fns:
            return FnT(self.info.fns[name])
        if name in self.info.imports:
            self.used_imports.add(name)
            mod = self.info.imports[name]
            return ModuleT(mod) if mod else UNKNOWN
        if name in self.info.schemas:
            self.schema_as_value(name, span)
            return UNKNOWN
        if name in BUILTINS:
            return BuiltinT(name)
        if name in NAMESPACES:
            return NamespaceT(name)
        if name not in self.info.module.broken:
            self.unknown_name(name, span)
        return UNKNOWN

    def schema_as_value(self, name: str, span: A.Span) -> None:
        self.sink.error(f"schema '{name}' is a type, not a value", span,
                        f"generate one with `gen x: {name}`, or build one: {name}(field=...)",
                        "schema-as-value")

    def unknown_name(self, name: str, span: A.Span) -> None:
        visible = [*self.scope.names(), *self.info.fns, *self.info.imports, *self.info.consts,
                   *BUILTINS]
        hint = suggest(name, visible)
        if name == "result":
            hint = "`result` names the return value only inside `ensures`"
        self.sink.error(f"unknown name '{name}'", span, hint, "unknown-name")

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

    def attribute(self, value: Type, e: A.Attribute) -> Type:
        if is_gradual(value):
            return value
        if isinstance(value, SchemaT):
            if e.attr in value.info.fields:
                return value.info.fields[e.attr]
            return self.no_attr(f"schema {value.info.name} has no field '{e.attr}'", e,
                                list(value.info.fields))
        if isinstance(value, ForkT):
            if e.attr == "text":
                return ListT(STR)
            var = value.fields.get(e.attr)
            if var is None and e.attr == "index":
                self.sink.error(f"{value.name}.index is the branch number inside the fork "
                                "block only", e.attr_span, f"bind it in the block (let i = "
                                f"{value.name}.index) and read {value.name}.i after it",
                                "unknown-attribute")
                return UNKNOWN
            if var is None:
                return self.no_attr(f"fork '{value.name}' binds no variable '{e.attr}'", e,
                                    list(dict.fromkeys([*value.fields, "text"])))
            var.used = True
            return ListT(var.type)
        if isinstance(value, BranchT):
            if e.attr == "index":
                return INT
            self.sink.error(f"inside its block, '{value.name}' has only .index", e.attr_span,
                            f"read {value.name}.{e.attr} after the fork block", "unknown-attribute")
            return UNKNOWN
        if isinstance(value, NamespaceT):
            name = f"{value.name}.{e.attr}"
            if name in BUILTINS:
                return BuiltinT(name)
            names = [b.rpartition(".")[2] for b in BUILTINS if b.startswith(value.name + ".")]
            return self.no_attr(f"{value.name} has no function '{e.attr}'", e, names)
        if isinstance(value, ModuleT):
            return self.module_attr(value.info, e)
        if isinstance(value, OptionalT):
            self.sink.error(f"'{e.attr}' of a value that may be None", e.span,
                            "check `if x != None:` first", "optional-access")
            return UNKNOWN
        methods = self.method_names(value)
        hint = f"call it: .{e.attr}()" if e.attr in methods else suggest(e.attr, methods)
        self.sink.error(f"{value} has no attribute '{e.attr}'", e.attr_span, hint,
                        "unknown-attribute")
        return UNKNOWN

    def no_attr(self, message: str, e: A.Attribute, names: list[str]) -> Type:
        hint = suggest(e.attr, names) or (f"available: {', '.join(names)}" if names else None)
        self.sink.error(message, e.attr_span, hint, "unknown-attribute")
        return UNKNOWN

    def module_attr(self, mod: ModuleInfo, e: A.Attribute) -> Type:
        if e.attr in mod.fns:
            return FnT(mod.fns[e.attr])
        if e.attr in mod.consts:
            self.constants[e] = mod.consts[e.attr]
            return mod.consts[e.attr].type
        if e.attr in mod.schemas:
            self.schema_as_value(f"{mod.name}.{e.attr}", e.span)
            return UNKNOWN
        names = [*mod.fns, *mod.schemas, *mod.consts]
        return self.no_attr(f"module '{mod.name}' has no '{e.attr}'", e, names)

    def method_names(self, t: Type) -> tuple[str, ...]:
        return methods_of(receiver_kind(t))

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

    def schema_called(self, func: A.Expr) -> SchemaInfo | None:
        """The schema a call builds a value of (`Person(...)`, `mod.Person(...)`), if any."""
        if isinstance(func, A.Name) and self.scope.lookup(func.id) is None:
            return self.info.schemas.get(func.id)
        if isinstance(func, A.Attribute) and isinstance(func.value, A.Name) \
                and self.scope.lookup(func.value.id) is None:
            mod = self.info.imports.get(func.value.id)
            if mod is not None and func.attr in mod.schemas:
                self.used_imports.add(func.value.id)
                return mod.schemas[func.attr]
        return None

    def binding_type(self, e: A.Expr, what: str) -> Type:
        """An argument written as a binding (`meta(x)`): a name a gen or select of this fn
        bound."""
        found = self.scope.lookup(e.id) if isinstance(e, A.Name) else None
        if found is not None and found[0].kind in ("gen", "select"):
            found[0].used = True
            return BindingT(found[0].kind, found[0].samples)
        reported = len(self.sink.items)
        self.check(e)
        if len(self.sink.items) == reported:  # not an unknown name: the wrong kind of one
            self.sink.error(f"{what} takes the name of a gen or select of this fn", e.span,
                            "e.g. meta(answer) after `gen answer`", "type-mismatch")
        return UNKNOWN


__all__ = ["ExprTyper", "Scope"]
