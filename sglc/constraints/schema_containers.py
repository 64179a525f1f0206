"""Objects and arrays of the schema subset (`object_node`, `array_node`), each a normalised
schema for outlines-core or a placeholder regex.

Objects. With `properties` or `required`, the object lists exactly the named properties
(never others; in schema order, required ones always, the rest optional), each valid against
its properties schema, every patternProperties schema whose pattern its name matches, and
additionalProperties / unevaluatedProperties where neither names it. So that every text is
valid, the subset narrows: a name propertyNames refuses is dropped; dependentRequired and
dependentSchemas drop an optional property whose dependency cannot be met (or require its
dependencies); minProperties requires the first optional properties; maxProperties drops the
last ones. Without names, the object is a map: any keys, each value valid against
additionalProperties and every patternProperties schema (false: only {}); propertyNames and
maxProperties give it its own regex (keys of the propertyNames schema, at most maxProperties
members: a repeated key only lowers the count); so do dependentRequired / dependentSchemas
(their trigger names are never keys); minProperties it cannot say (keys may repeat).

Arrays. `items` / `prefixItems` / `minItems` / `maxItems` / `contains` (the first
max(1, minContains) items also satisfy it); `unevaluatedItems` is read as items where items
is absent. uniqueItems: true only with at most one item; maxContains caps the number of items
(then no more than that many can match contains).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sglc.constraints.ecmascript import string_pattern_regex
from sglc.constraints.errors import ConstraintError
from sglc.constraints.schema_common import WHITESPACE, Compiler, check_range, count, pointer
from sglc.constraints.schema_merge import both


def object_node(compiler: Compiler, schema: dict[str, Any], ptr: str) -> Any:
    props = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    for key, value in (("properties", props), ("patternProperties", patterns)):
        if not isinstance(value, dict):
            raise ConstraintError(f"{key} must be an object", pointer=pointer(ptr, key))
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ConstraintError("required must be a list of names",
                              pointer=pointer(ptr, "required"))
    check_range(schema, "minProperties", "maxProperties", ptr, "object")
    names = list(dict.fromkeys([*props, *required]))
    if "properties" not in schema and not required:
        return _map(compiler, schema, patterns, ptr)
    return _closed(compiler, schema, names, dict.fromkeys(required), ptr)


def _closing(schema: dict[str, Any]) -> Any:
    if "additionalProperties" in schema:
        return schema["additionalProperties"]
    return schema.get("unevaluatedProperties", True)


def _property_schema(schema: dict[str, Any], name: str, ptr: str) -> Any:
    props, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    sub: Any = props.get(name, True)
    matched = False
    for pattern, pattern_schema in patterns.items():
        regex = _pattern_checked(pattern, pointer(ptr, "patternProperties", pattern))
        if re.fullmatch(regex, name):  # NOTE: names needing escapes are refused (_check_name)
            matched = True
            sub = both(sub, pattern_schema)
    if name not in props and not matched:
        sub = both(sub, _closing(schema))
    return sub


def _closed(compiler: Compiler, schema: dict[str, Any], names: list[str],
            required: dict[str, None], ptr: str) -> Any:
    subs = {name: _property_schema(schema, name, ptr) for name in names}
    if "propertyNames" in schema:
        allowed = _name_filter(compiler, schema["propertyNames"], pointer(ptr, "propertyNames"))
        for name in names:
            if not allowed(name):
                subs[name] = False
    extra: list[Any] = []
    for key in ("dependentRequired", "dependentSchemas"):
        for name, dep in _dependencies(schema, key, ptr).items():
            if name not in subs:
                continue
            if key == "dependentRequired":
                if any(d not in subs for d in dep):
                    subs[name] = False
                else:
                    required.update(dict.fromkeys(dep))
            elif name in required:
                extra.append(dep)
            else:
                subs[name] = False
    if extra:
        rest = {k: v for k, v in schema.items() if k != "dependentSchemas"}
        return compiler.node({"allOf": [rest, *extra]}, ptr)
    out_props: dict[str, Any] = {}
    for name, sub in subs.items():
        where = pointer(ptr, "properties", name)
        _check_name(name, where)
        value = compiler.node(sub, where)
        if value is None:
            if name in required:
                return compiler.never(where)
            continue
        out_props[name] = value
    order = list(out_props)
    req = [n for n in order if n in required]
    low, high = count(schema, "minProperties", ptr), count(schema, "maxProperties", ptr)
    if high is not None:
        if len(req) > high:
            return compiler.never(pointer(ptr, "maxProperties"))
        optional = [n for n in order if n not in required][: high - len(req)]
        order = [n for n in order if n in required or n in optional]
    if low is not None:
        if len(order) < low:
            return compiler.never(pointer(ptr, "minProperties"))
        for name in order:
            if len(req) >= low:
                break
            if name not in req:
                req.append(name)
    out: dict[str, Any] = {"type": "object",
                           "properties": {n: out_props[n] for n in order}}
    req_set = set(req)
    if req_set:
        out["required"] = [n for n in order if n in req_set]
    return out


def _check_name(name: str, where: str) -> None:
    if json.dumps(name, ensure_ascii=False) != f'"{name}"':
        raise ConstraintError(f"property name {name!r} needs escaping in JSON, which "
                              "outlines-core does not do", pointer=where,
                              hint='drop the ", \\ or control character from the name')


def _dependencies(schema: dict[str, Any], key: str, ptr: str) -> dict[str, Any]:
    value = schema.get(key, {})
    if not isinstance(value, dict):
        raise ConstraintError(f"{key} must be an object", pointer=pointer(ptr, key))
    if key == "dependentRequired":
        for name, dep in value.items():
            if not isinstance(dep, list) or not all(isinstance(d, str) for d in dep):
                raise ConstraintError("a dependentRequired entry must be a list of names",
                                      pointer=pointer(ptr, key, name))
    return value


def _name_filter(compiler: Compiler, names_schema: Any, ptr: str) -> Any:
    sub = compiler.fresh()
    node = sub.node(names_schema, ptr)
    regex = None if node is None else sub.regex(node)
    return lambda name: regex is not None and re.fullmatch(regex, json.dumps(
        name, ensure_ascii=False)) is not None


def _map(compiler: Compiler, schema: dict[str, Any], patterns: dict[str, Any],
         ptr: str) -> Any:
    if schema.get("minProperties", 0) != 0:
        raise ConstraintError("minProperties needs the properties listed: a map's keys may "
                              "repeat", pointer=pointer(ptr, "minProperties"),
                              hint="list the properties under properties")
    triggers = [name for key in ("dependentRequired", "dependentSchemas")
                for name in _dependencies(schema, key, ptr)]
    if triggers and "propertyNames" in schema:
        raise ConstraintError("dependencies and propertyNames together need the properties "
                              "listed", pointer=pointer(ptr, "propertyNames"),
                              hint="list the properties under properties")
    high = count(schema, "maxProperties", ptr)
    values: Any = _closing(schema)
    for pattern, sub in patterns.items():
        _pattern_checked(pattern, pointer(ptr, "patternProperties", pattern))
        values = both(values, sub)
    node = None if values is False or high == 0 else compiler.node(
        values, pointer(ptr, "additionalProperties"))
    keys = None
    if "propertyNames" in schema and node is not None:
        names = compiler.node(both(schema["propertyNames"], {"type": "string"}),
                              pointer(ptr, "propertyNames"))
        keys = None if names is None else compiler.regex(names)
        if keys is None:
            node = None
    if node is None:
        return {"type": "object", "properties": {}}
    if triggers:  # a key that would trigger a dependency is never generated
        keys = _strings_except(triggers)
    if keys is None and high is None:
        out: dict[str, Any] = {"type": "object"}
        if not compiler.is_any(node):
            out["additionalProperties"] = node
        return out
    keys = keys or compiler.regex({"type": "string"})
    return compiler.placeholder(_map_regex(keys, compiler.regex(node), high,
                                           compiler.whitespace))


def _strings_except(words: list[str]) -> str:
    """JSON strings (unescaped characters only) other than `words`: a trie's complement."""
    safe = '[^"\\\\\\x00-\\x1f]'

    def rest(suffixes: set[str]) -> str:
        alts = [] if "" in suffixes else [""]
        firsts = sorted({w[0] for w in suffixes if w})
        for c in firsts:
            alts.append(re.escape(c) + f"(?:{rest({w[1:] for w in suffixes if w[:1] == c})})")
        excluded = "".join(re.escape(c) for c in firsts)
        alts.append(f'[^"\\\\\\x00-\\x1f{excluded}]{safe}*')
        return "|".join(alts)
    return f'"(?:{rest(set(words))})"'


def _map_regex(keys: str, values: str, high: int | None, ws: str) -> str:
    """{k:v,...} with at most `high` members (None: any number). A repeated key counts once
    in the parsed object, so an upper bound still holds; a lower one would not."""
    w = WHITESPACE[ws]
    member = f"(?:{keys}){w}:{w}(?:{values})"
    more = "*" if high is None else f"{{0,{high - 1}}}"
    return f"\\{{{w}(?:{member}(?:{w},{w}{member}){more})?{w}\\}}"


def _pattern_checked(pattern: str, where: str) -> str:
    try:
        return string_pattern_regex(pattern)
    except ConstraintError as exc:
        raise type(exc)(exc.message, pointer=where, position=exc.position,
                        hint=exc.hint) from None


# -- arrays -------------------------------------------------------------------------------------
def array_node(compiler: Compiler, schema: dict[str, Any], ptr: str) -> Any:
    check_range(schema, "minItems", "maxItems", ptr, "array")
    low = count(schema, "minItems", ptr) or 0
    high = count(schema, "maxItems", ptr)
    if schema.get("uniqueItems", False) is not False and (high is None or high > 1):
        raise ConstraintError("uniqueItems is supported only with maxItems 0 or 1",
                              pointer=pointer(ptr, "uniqueItems"),
                              hint="check it on the value after generation")
    if "contains" in schema and "maxContains" in schema:
        # at most maxContains items: then at most that many can match `contains`
        most = count(schema, "maxContains", ptr)
        high = most if high is None else min(high, most)
    items = schema.get("items", schema.get("unevaluatedItems", True))
    if isinstance(items, list):
        raise ConstraintError("items as a list is not supported",
                              pointer=pointer(ptr, "items"), hint="use prefixItems")
    prefix = schema.get("prefixItems", [])
    if not isinstance(prefix, list):
        raise ConstraintError("prefixItems must be a list of schemas",
                              pointer=pointer(ptr, "prefixItems"))
    num_contains = 0
    if "contains" in schema:
        num_contains = 1 if "minContains" not in schema else count(schema, "minContains", ptr)
    items_ptr = pointer(ptr, "items" if "items" in schema else "unevaluatedItems")
    if not prefix and not num_contains:
        return _plain_array(compiler, items, low, high, items_ptr)
    fixed = max(len(prefix), num_contains or 0, low)
    if high is not None:
        if max(num_contains or 0, low) > high:
            return compiler.never(pointer(ptr, "maxItems"))
        fixed = min(fixed, high)
    elements = []
    for i in range(fixed):
        sub, where = (prefix[i], pointer(ptr, "prefixItems", i)) if i < len(prefix) else (
            items, items_ptr)
        if i < (num_contains or 0):
            sub, where = both(sub, schema["contains"]), pointer(ptr, "contains")
        node = compiler.node(sub, where)
        if node is None:
            return None
        elements.append(compiler.regex(node))
    tail_node = None if items is False else compiler.node(items, items_ptr)
    room = None if high is None else high - fixed
    tail = None if tail_node is None or room == 0 else compiler.regex(tail_node)
    return compiler.placeholder(_array_regex(elements, tail, room, compiler.whitespace))


def _plain_array(compiler: Compiler, items: Any, low: int, high: int | None,
                 items_ptr: str) -> Any:
    out: dict[str, Any] = {"type": "array"}
    values = None if items is False else compiler.node(items, items_ptr)
    if values is None:
        if low > 0:
            return compiler.never(items_ptr)
        return {"type": "array", "maxItems": 0}
    if not compiler.is_any(values):
        out["items"] = values
    if low:
        out["minItems"] = low
    if high is not None:
        out["maxItems"] = high
    return out


def _array_regex(elements: list[str], tail: str | None, room: int | None, ws: str) -> str:
    """[e0,e1,...] then up to `room` (None: any number) more items of `tail`."""
    w = WHITESPACE[ws]
    sep = f"{w},{w}"
    body = sep.join(f"(?:{e})" for e in elements)
    more = ""
    if tail is not None:
        count = "*" if room is None else f"{{0,{room}}}"
        if elements:
            more = f"(?:{sep}(?:{tail})){count}"
        else:
            rest = "*" if room is None else f"{{0,{room - 1}}}"
            more = f"(?:(?:{tail})(?:{sep}(?:{tail})){rest})?"
    return f"\\[{w}{body}{more}{w}\\]"


__all__ = ["array_node", "object_node"]
