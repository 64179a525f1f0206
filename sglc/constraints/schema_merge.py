"""The conjunction of JSON schemas (`merge`): one schema whose instances are valid against
both, or a subset of them, or a ConstraintError when no such schema is written here.

Only the top level is merged; subschemas under the same keyword become {"allOf": [a, b]},
merged in turn when the compiler reaches them. `$ref`, `allOf` and `if` must be expanded by the
caller first. Cross terms are kept: a property one side lists and the other does not must
also satisfy the other side's additionalProperties / unevaluatedProperties (each side's
unevaluatedProperties is read as additionalProperties: it then sees fewer evaluated
properties, which only narrows); an item past one side's prefixItems must satisfy that side's
items (or unevaluatedItems).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sglc.constraints.errors import ConstraintError

_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties",
          "minContains")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties",
          "maxContains")
_EQUAL = ("pattern", "format", "multipleOf", "contains", "oneOf", "not", "propertyNames",
          "dependentSchemas")
_OBJECT_SUBS = ("properties", "patternProperties")
_TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")
_MAX_BRANCHES = 64
_NEVER = object()  # a keyword no value satisfies on both sides


def canonical_json(value: Any) -> str:
    """A text equal for equal JSON values (1 == 1.0, keys in any order; true is not 1)."""
    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return int(v) if float(v).is_integer() and abs(v) < 2**63 else v
        if isinstance(v, list):
            return [norm(x) for x in v]
        return {k: norm(x) for k, x in v.items()}
    return json.dumps(norm(value), sort_keys=True)


def both(a: Any, b: Any) -> Any:
    """The lazy conjunction of two subschemas."""
    if a is True or a == {}:
        return b
    if b is True or b == {}:
        return a
    if a is False or b is False:
        return False
    return {"allOf": [a, b]}


def merge(a: dict[str, Any], b: dict[str, Any], ptr: str) -> dict[str, Any] | bool:
    """The conjunction of two schema objects without $ref, allOf or if at their top level;
    False when no value satisfies both."""
    out: dict[str, Any] = {}
    for key in dict.fromkeys([*a, *b]):
        if key in a and key in b:
            value = _merge_key(key, a, b, ptr)
            if value is _NEVER:
                return False
            out[key] = value
        else:
            out[key] = a[key] if key in a else b[key]
    _cross_properties(a, b, out)
    _cross_properties(b, a, out)
    _cross_items(a, b, out)
    return out


def _merge_key(key: str, a: dict[str, Any], b: dict[str, Any], ptr: str) -> Any:
    x, y = a[key], b[key]
    if key in _LOWER or key in _UPPER:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
            raise ConstraintError(f"{key} must be a number", pointer=f"{ptr}/allOf")
        return max(x, y) if key in _LOWER else min(x, y)
    if key == "type":
        return _merge_types(x, y)
    if key == "enum":
        keep = {canonical_json(v) for v in y} if isinstance(y, list) else set()
        values = [v for v in x if canonical_json(v) in keep] if isinstance(x, list) else []
        return values or _NEVER
    if key == "const":
        return x if canonical_json(x) == canonical_json(y) else _NEVER
    if key == "required":
        return list(dict.fromkeys([*x, *y])) if isinstance(x, list) and isinstance(y, list) else x
    if key in _OBJECT_SUBS:
        if not isinstance(x, dict) or not isinstance(y, dict):
            raise ConstraintError(f"{key} must be an object", pointer=ptr)
        return {name: both(x[name], y[name]) if name in x and name in y
                else x.get(name, y.get(name)) for name in dict.fromkeys([*x, *y])}
    if key in ("additionalProperties", "unevaluatedProperties", "items", "unevaluatedItems"):
        return both(x, y)
    if key == "prefixItems":
        return x  # zipped by _cross_items
    if key == "uniqueItems":
        return bool(x) or bool(y)
    if key == "dependentRequired":
        return {k: list(dict.fromkeys([*x.get(k, []), *y.get(k, [])])) for k in
                dict.fromkeys([*x, *y])}
    if key == "anyOf":
        if len(x) * len(y) > _MAX_BRANCHES:
            raise ConstraintError("too many anyOf combinations to merge", pointer=ptr)
        return [both(p, q) for p in x for q in y]
    if key in _EQUAL or key in ("$defs", "definitions"):
        if canonical_json(x) == canonical_json(y):
            return x
        if key in ("$defs", "definitions"):
            return x
        raise ConstraintError(f"cannot merge two different {key!r} keywords", pointer=ptr,
                              hint=f"write one {key} that says both")
    return x  # annotations


def _merge_types(x: Any, y: Any) -> Any:
    xs = [x] if isinstance(x, str) else list(x)
    ys = [y] if isinstance(y, str) else list(y)
    out = [t for t in _TYPES if (t in xs or (t == "integer" and "number" in xs))
           and (t in ys or (t == "integer" and "number" in ys))]
    if "number" in out and "integer" in out:
        out.remove("integer")
    return out or _NEVER


def _closing(side: dict[str, Any]) -> Any:
    """What a side says about properties it does not list (None: nothing)."""
    extra = [side[k] for k in ("additionalProperties", "unevaluatedProperties") if k in side]
    if not extra:
        return None
    return extra[0] if len(extra) == 1 else both(*extra)


def _cross_properties(a: dict[str, Any], b: dict[str, Any], out: dict[str, Any]) -> None:
    """b's properties that a neither lists nor matches by pattern must satisfy a's closing."""
    closing = _closing(a)
    if closing is None or closing is True:
        return
    listed = a.get("properties", {}) if isinstance(a.get("properties"), dict) else {}
    patterns = list(a.get("patternProperties", {})) if isinstance(
        a.get("patternProperties"), dict) else []
    props = out.get("properties")
    if not isinstance(props, dict):
        return
    for name in list(props):
        if name in listed or any(_search(p, name) for p in patterns):
            continue
        props[name] = both(props[name], closing)
    if isinstance(b.get("patternProperties"), dict) and b["patternProperties"]:
        out["additionalProperties"] = both(out.get("additionalProperties", True), closing)


def _search(pattern: str, name: str) -> bool:
    from sglc.constraints.ecmascript import string_pattern_regex

    try:
        return re.fullmatch(string_pattern_regex(pattern), name) is not None
    except ConstraintError:
        return False  # unknown: the closing applies, which only narrows


def _cross_items(a: dict[str, Any], b: dict[str, Any], out: dict[str, Any]) -> None:
    if "prefixItems" not in a and "prefixItems" not in b:
        return
    xs, ys = a.get("prefixItems", []), b.get("prefixItems", [])
    if not isinstance(xs, list) or not isinstance(ys, list):
        return

    def at(side: dict[str, Any], prefix: list[Any], i: int) -> Any:
        if i < len(prefix):
            return prefix[i]
        return side.get("items", side.get("unevaluatedItems", True))
    out["prefixItems"] = [both(at(a, xs, i), at(b, ys, i)) for i in range(max(len(xs), len(ys)))]


__all__ = ["both", "canonical_json", "merge"]
