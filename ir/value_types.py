"""Does a value have an IR type? The check at the boundary where values enter a program
(a fn called from Python, `sglc run -a`, a server request): `value_error` says what is
wrong, in words, or None.

A schema type is checked against its JSON schema in `IRProgram.schemas` (the subset SGL
types produce: type, enum, anyOf, properties / required / additionalProperties, items,
string and array lengths, integer bounds); bounds on str, list and int are checked too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sglc.ir.types import IRType

_ARTICLE = {"str": "a str", "int": "an int", "float": "a float", "bool": "a bool",
            "None": "None", "json": "a JSON value", "any": "a value"}


def describe(t: IRType) -> str:
    """A type in words, with its article: "an int", "a list[str]", "one of "a", "b"",
    "a Person object", "an int or None"."""
    if t.kind in _ARTICLE and t.min is None and t.max is None:
        return _ARTICLE[t.kind]
    if t.kind == "choice":
        return "one of " + ", ".join(json.dumps(c, ensure_ascii=False) for c in t.choices)
    if t.kind == "optional":
        return f"{describe(t.args[0])} or None"
    if t.kind == "schema":
        return f"a {t.name} object"
    text = str(t)
    return f"an {text}" if text[0] in "aeiou" else f"a {text}"


def value_error(value: Any, t: IRType, schemas: Mapping[str, Any]) -> str | None:
    """Why `value` is not of type `t` ("must be an int, got str '3'"), or None."""
    return _problem(value, t, schemas)


def _problem(value: Any, t: IRType, schemas: Mapping[str, Any]) -> str | None:
    kind = t.kind
    if kind in ("json", "any"):
        return None
    if kind == "optional":
        return None if value is None else _problem(value, t.args[0], schemas)
    if kind == "schema":
        schema = schemas.get(t.name)
        if not isinstance(value, dict):
            return _got(describe(t), value)
        return None if schema is None else _schema_problem(value, schema, t.name)
    if kind == "choice":
        return None if value in t.choices else _got(describe(t), value)
    if kind == "list":
        if not isinstance(value, list):
            return _got(describe(t), value)
        for i, item in enumerate(value):
            inner = _problem(item, t.args[0], schemas)
            if inner is not None:
                return f"item {i} {inner}"
        return _bounds(len(value), t, "items")
    if kind == "dict":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return _got(describe(t), value)
        for k, item in value.items():
            inner = _problem(item, t.args[1], schemas)
            if inner is not None:
                return f"key {k!r} {inner}"
        return None
    if not _SCALARS[kind](value):
        return _got(_ARTICLE[kind], value)
    if kind == "str":
        return _bounds(len(value), t, "characters")
    return _bounds(value, t, "") if kind == "int" else None


_SCALARS = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "None": lambda v: v is None,
}


def _got(want: str, value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=repr)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"must be {want}, got {_type_word(value)} {shown}"


def _type_word(value: Any) -> str:
    if value is None:
        return "None"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list",
            dict: "dict"}.get(type(value), type(value).__name__)


def _bounds(size: int, t: IRType, unit: str) -> str | None:
    """A length (`unit`: "characters", "items") or, without a unit, an int's value."""
    low, high = t.min, t.max
    if low is not None and size < low:
        return f"must have at least {low} {unit}, got {size}" if unit else \
            f"must be >= {low}, got {size}"
    if high is not None and size > high:
        return f"must have at most {high} {unit}, got {size}" if unit else \
            f"must be <= {high}, got {size}"
    return None


# ---- JSON schemas (the subset SGL types produce) ---------------------------------------------

_JSON_TYPES = {"string": lambda v: isinstance(v, str),
               "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
               "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
               "boolean": lambda v: isinstance(v, bool), "null": lambda v: v is None,
               "array": lambda v: isinstance(v, list), "object": lambda v: isinstance(v, dict)}


def _schema_problem(value: Any, schema: Any, where: str) -> str | None:
    """Why a JSON value does not validate against an SGL-made schema (at `where`)."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema and value not in schema["enum"]:
        return f"{where} must be one of {', '.join(map(json.dumps, schema['enum']))}, " \
               f"got {json.dumps(value, default=repr)}"
    if "anyOf" in schema:
        if all(_schema_problem(value, s, where) for s in schema["anyOf"]):
            return f"{where} does not fit any of its types, got {json.dumps(value, default=repr)}"
        return None
    kind = schema.get("type")
    if kind in _JSON_TYPES and not _JSON_TYPES[kind](value):
        return f"{where} must be a JSON {kind}, got {_type_word(value)}"
    if kind == "string":
        return _length(len(value), schema, "minLength", "maxLength", where, "characters")
    if kind == "integer":
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where} must be >= {schema['minimum']}, got {value}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where} must be <= {schema['maximum']}, got {value}"
    if kind == "array":
        for i, item in enumerate(value):
            inner = _schema_problem(item, schema.get("items", {}), f"{where}[{i}]")
            if inner is not None:
                return inner
        return _length(len(value), schema, "minItems", "maxItems", where, "items")
    if kind == "object":
        return _object_problem(value, schema, where)
    return None


def _object_problem(value: dict, schema: dict, where: str) -> str | None:
    props = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            return f"{where} is missing the field '{name}'"
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            inner = _schema_problem(item, props[name], f"{where}.{name}")
        elif extra is False:
            inner = f"{where} has no field '{name}'"
        else:
            inner = _schema_problem(item, extra, f"{where}.{name}")
        if inner is not None:
            return inner
    return None


def _length(size: int, schema: dict, low_key: str, high_key: str, where: str,
            unit: str) -> str | None:
    if low_key in schema and size < schema[low_key]:
        return f"{where} must have at least {schema[low_key]} {unit}, got {size}"
    if high_key in schema and size > schema[high_key]:
        return f"{where} must have at most {schema[high_key]} {unit}, got {size}"
    return None


__all__ = ["describe", "value_error"]
