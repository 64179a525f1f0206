"""enum / const: any JSON values; beside other keywords, the values those keywords accept."""

from __future__ import annotations

import json
import re
from typing import Any

from sglc.constraints.errors import ConstraintError
from sglc.constraints.literals import escape_literal
from sglc.constraints.schema_common import ANNOTATIONS, Compiler, json_type, pointer, without
from sglc.constraints.schema_merge import canonical_json


def literal(compiler: Compiler, schema: dict[str, Any], ptr: str) -> Any:
    """enum / const: the listed values; beside keywords other than type, only the values
    whose JSON text the rest of the schema's regex accepts."""
    values = _values(schema, ptr)
    rest = without(schema, "enum", "const")
    if "type" in rest:
        names = compiler.types({"type": rest["type"]}, ptr)
        for i, value in enumerate(values):
            if not any(json_type(value, name) for name in names):
                key = "enum" if "enum" in schema else "const"
                where = pointer(ptr, key, i) if key == "enum" else pointer(ptr, key)
                raise ConstraintError(f"{value!r} does not have type {rest['type']}",
                                      pointer=where)
    if any(key not in ANNOTATIONS and key != "type" for key in rest):
        regex = _rest_regex(compiler, rest, ptr)
        values = [v for v in values if regex is not None and re.fullmatch(regex, _compact(v))]
    if not values:
        return compiler.never(ptr)
    if any(isinstance(v, (dict, list)) for v in values):
        # NOTE: outlines-core reads keywords inside a const object ({"$ref": ...}); spelled here
        return compiler.placeholder("|".join(escape_literal(_compact(v)) for v in values))
    return {"const": values[0]} if len(values) == 1 else {"enum": values}


def _values(schema: dict[str, Any], ptr: str) -> list[Any]:
    if "enum" in schema:
        values = schema["enum"]
        if not isinstance(values, list) or not values:
            raise ConstraintError("enum must be a non-empty list", pointer=pointer(ptr, "enum"))
        if "const" in schema:
            values = [v for v in values if canonical_json(v) == canonical_json(schema["const"])]
    else:
        values = [schema["const"]]
    unique: dict[str, Any] = {}
    for value in values:
        unique.setdefault(canonical_json(value), value)
    return list(unique.values())


def _rest_regex(compiler: Compiler, rest: dict[str, Any], ptr: str) -> str | None:
    sub = compiler.fresh()
    node = sub.node(rest, ptr)
    return None if node is None else sub.regex(node)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


__all__ = ["literal"]
