"""JSON schemas of SGL types: what a `gen x: Person` (or `list[int]`, `json`) must produce."""

from __future__ import annotations

from typing import Any

from sglc.lang.types import (
    BOOL,
    FLOAT,
    INT,
    NONE,
    STR,
    Bounds,
    DictT,
    ListT,
    LiteralT,
    OptionalT,
    Prim,
    SchemaInfo,
    SchemaT,
    Type,
)

_PRIMS: dict[Type, dict[str, Any]] = {
    STR: {"type": "string"}, INT: {"type": "integer"}, FLOAT: {"type": "number"},
    BOOL: {"type": "boolean"}, NONE: {"type": "null"},
}


_BOUND_KEYWORDS = {"str": ("minLength", "maxLength"), "int": ("minimum", "maximum"),
                   "list": ("minItems", "maxItems")}


def json_schema(t: Type) -> dict[str, Any]:
    """The JSON schema of a type; nested schemas are inlined (the checker rejects cycles);
    `json` and anything without a finer schema is `{}` (any JSON value). Bounds become
    minLength/maxLength (str), minimum/maximum (int), minItems/maxItems (list)."""
    if t in _PRIMS:
        out = dict(_PRIMS[t])
        if isinstance(t, Prim) and t.bounds:
            out.update(_bounds(t.name, t.bounds))
        return out
    if isinstance(t, LiteralT):
        return {"enum": list(t.values)}
    if isinstance(t, OptionalT):
        return {"anyOf": [json_schema(t.inner), {"type": "null"}]}
    if isinstance(t, ListT):
        out = {"type": "array", "items": json_schema(t.elem)}
        return {**out, **_bounds("list", t.bounds)} if t.bounds else out
    if isinstance(t, DictT):
        return {"type": "object", "additionalProperties": json_schema(t.value)}
    if isinstance(t, SchemaT):
        return schema_of(t.info)
    return {}


def _bounds(kind: str, bounds: Bounds) -> dict[str, int]:
    low, high = _BOUND_KEYWORDS[kind]
    out = {}
    if bounds.min is not None:
        out[low] = bounds.min
    if bounds.max is not None:
        out[high] = bounds.max
    return out


def schema_of(info: SchemaInfo) -> dict[str, Any]:
    """A schema declaration: an object with every field required, no others."""
    out: dict[str, Any] = {"title": info.name, "type": "object"}
    if info.doc:
        out["description"] = info.doc
    out["properties"] = {name: json_schema(t) for name, t in info.fields.items()}
    out["required"] = list(info.fields)
    out["additionalProperties"] = False
    return out


__all__ = ["json_schema", "schema_of"]
