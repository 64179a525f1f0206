"""Types as written (`list[Person]`, `"a" | "b"`, `str | None`) -> static types."""

from __future__ import annotations

from sglc.frontend import ast as A
from sglc.frontend.symbols import ModuleInfo, suggest
from sglc.lang.types import (
    JSON,
    NONE,
    PRIMS,
    STR,
    UNKNOWN,
    DictT,
    ListT,
    LiteralT,
    OptionalT,
    SchemaT,
    Type,
)
from sglc.source import DiagnosticSink

TYPE_NAMES = (*PRIMS, "json", "list", "dict")


class TypeResolver:
    def __init__(self, sink: DiagnosticSink) -> None:
        self.sink = sink
        self.used_imports: set[str] = set()

    def resolve(self, t: A.TypeExpr, info: ModuleInfo) -> Type:
        if isinstance(t, A.TypeLiteral):
            return LiteralT((t.value,))
        if isinstance(t, A.TypeNone):
            return NONE
        if isinstance(t, A.TypeUnion):
            return self.union(t, info)
        return self.named(t, info)

    def named(self, t: A.TypeName, info: ModuleInfo) -> Type:
        args = [self.resolve(a, info) for a in t.args]
        if t.name == "list":
            if len(args) != 1:
                self.sink.error("list takes one type argument: list[T]", t.span, None,
                                "bad-type")
                return ListT(JSON)
            return ListT(args[0])
        if t.name == "dict":
            if not args:
                return DictT(STR, JSON)
            if len(args) != 2 or args[0] != STR:
                self.sink.error("dict takes a str key and a value type: dict[str, T]", t.span,
                                None, "bad-type")
                return DictT(STR, JSON)
            return DictT(STR, args[1])
        if args:
            self.sink.error(f"{t.name} takes no type arguments", t.span, None, "bad-type")
        if t.name in PRIMS:
            return PRIMS[t.name]
        if t.name == "json":
            return JSON
        return self.schema(t, info)

    def schema(self, t: A.TypeName, info: ModuleInfo) -> Type:
        if "." in t.name:
            mod_name, _, name = t.name.rpartition(".")
            if mod_name not in info.imports:
                self.sink.error(f"unknown module '{mod_name}'", t.span,
                                suggest(mod_name, list(info.imports)), "unknown-name")
                return UNKNOWN
            mod = info.imports[mod_name]
            self.used_imports.add(mod_name)
            if mod is None:
                return UNKNOWN
            if name in mod.schemas:
                return SchemaT(mod.schemas[name])
            self.sink.error(f"module '{mod_name}' has no schema '{name}'", t.span,
                            suggest(name, list(mod.schemas)), "unknown-type")
            return UNKNOWN
        if t.name in info.schemas:
            return SchemaT(info.schemas[t.name])
        if t.name not in info.module.broken:
            hint = suggest(t.name, [*TYPE_NAMES, *info.schemas])
            if t.name in info.fns:
                hint = f"'{t.name}' is a fn; types are str, int, float, bool, json, list[T], " \
                       "dict or a schema"
            self.sink.error(f"unknown type '{t.name}'", t.span, hint, "unknown-type")
        return UNKNOWN

    def union(self, t: A.TypeUnion, info: ModuleInfo) -> Type:
        options = [self.resolve(o, info) for o in t.options]
        optional = NONE in options
        rest = [(o, n) for o, n in zip(options, t.options, strict=False) if o != NONE]
        if not rest:
            return NONE
        if all(isinstance(o, LiteralT) or o == UNKNOWN for o, _ in rest):
            literals = [v for o, _ in rest if isinstance(o, LiteralT) for v in o.values]
            if len(set(literals)) < len(literals):
                self.sink.warning("duplicate choice in a union", t.span, None, "bad-union")
            base: Type = LiteralT(tuple(dict.fromkeys(literals))) if literals else UNKNOWN
        elif len(rest) == 1:
            base = rest[0][0]
        else:
            node = next(n for o, n in rest if not isinstance(o, LiteralT))
            self.sink.error("a union may only join string literals (and None)", node.span,
                            "use json for values of mixed types", "bad-union")
            return UNKNOWN
        return OptionalT(base) if optional and base != UNKNOWN else base
