"""What a name or an attribute stands for, and its static type: locals (the fn's scope),
`result`, module constants, fns, imported modules, schemas, builtins and their namespaces,
fork handles (`b.index` inside the block, `b.x` and `b.text` after it), schema fields."""

from __future__ import annotations

from sglc.frontend import ast as A
from sglc.frontend.symbols import (
    BranchT,
    ConstInfo,
    FnT,
    ForkT,
    ModuleInfo,
    ModuleT,
    Var,
    suggest,
)
from sglc.lang import BUILTINS, NAMESPACES, methods_of, receiver_kind
from sglc.lang.types import (
    INT,
    STR,
    UNKNOWN,
    BindingT,
    BuiltinT,
    ListT,
    NamespaceT,
    OptionalT,
    SchemaInfo,
    SchemaT,
    Type,
    is_gradual,
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


class NameResolver:
    """Names and attributes in the context of one module and one fn's scope (the base of
    the expression typer, which supplies `check`)."""

    def __init__(self, info: ModuleInfo, sink: DiagnosticSink,
                 constants: dict[object, ConstInfo] | None = None) -> None:
        self.info = info
        self.sink = sink
        self.constants: dict[object, ConstInfo] = {} if constants is None else constants
        self.scope = Scope()
        self.result_type: Type | None = None  # bound to `result` inside `ensures`
        self.used_imports: set[str] = set()

    def check(self, e: A.Expr) -> Type:
        raise NotImplementedError

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


__all__ = ["NameResolver", "Scope"]
