"""Types as written (`list[Person]`, `"a" | "b"`, `str | None`, `str[max=40]`,
`json[str]`) -> static types.

Bounds: `min`/`max` on str (its length), list (its number of items) and int (its value).
`json[T]` is T written as JSON: as a type it is T (a `json[str]` value is a str); as a gen
constraint its text is JSON (a quoted string), see the checker.
"""

from __future__ import annotations

import dataclasses

from sglc.frontend import ast as A
from sglc.frontend.symbols import ModuleInfo, suggest
from sglc.lang.state import STATE_SCHEMAS
from sglc.lang.types import (
    INT,
    JSON,
    NONE,
    PRIMS,
    STR,
    UNKNOWN,
    Bounds,
    DictT,
    ListT,
    LiteralT,
    OptionalT,
    SchemaT,
    Type,
)
from sglc.source import DiagnosticSink

TYPE_NAMES = (*PRIMS, "json", "list", "dict")
_BOUNDED = {"str": "length", "list": "number of items", "int": "value"}


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
        resolved = self._named(t, info)
        if not t.bounds:
            return resolved
        bounds = self.bounds(t)
        if bounds is None:
            return resolved
        if isinstance(resolved, ListT) or resolved in (STR, INT):
            return dataclasses.replace(resolved, bounds=bounds)  # type: ignore[type-var]
        return resolved

    def bounds(self, t: A.TypeName) -> Bounds | None:
        """The `min=`/`max=` of a type name, checked (None after an error)."""
        what = _BOUNDED.get(t.name)
        if what is None:
            self.sink.error(f"{t.name} takes no bounds", t.bounds[0].span,
                            "bounds go on str (its length), list (its items) and int (its value)",
                            "bad-bound")
            return None
        values: dict[str, int] = {}
        for b in t.bounds:
            if b.name not in ("min", "max"):
                self.sink.error(f"unknown bound '{b.name}'", b.span,
                                f"{t.name} takes min= and max= (its {what})", "bad-bound")
            elif b.name in values:
                self.sink.error(f"bound '{b.name}' given twice", b.span, None, "bad-bound")
            elif b.value < 0 and t.name != "int":
                self.sink.error(f"a {what} cannot be negative", b.span, None, "bad-bound")
            else:
                values[b.name] = b.value
        low, high = values.get("min"), values.get("max")
        if low is not None and high is not None and low > high:
            self.sink.error(f"min={low} is more than max={high}", t.span, None, "bad-bound")
            return None
        return Bounds(low, high) if values else None

    def _named(self, t: A.TypeName, info: ModuleInfo) -> Type:
        args = [self.resolve(a, info) for a in t.args]
        if t.name == "list":
            if len(args) != 1:
                self.sink.error("list takes one type argument: list[T]", t.span, None,
                                "bad-type")
                return ListT(JSON)
            return ListT(args[0])
        if t.name == "json" and args:
            if len(args) != 1:
                self.sink.error("json takes one type argument: json[T]", t.span, None,
                                "bad-type")
                return JSON
            return args[0]
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
        if t.name in STATE_SCHEMAS:
            return SchemaT(STATE_SCHEMAS[t.name])
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
