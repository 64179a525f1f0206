"""A JSON schema checked against the supported subset (a JSON pointer on every error) and
normalised into the schema outlines-core turns into a regex (`SchemaCompiler`).

The subset it accepts is listed in `schema.py`.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from outlines_core.json_schema import build_regex_from_schema

from sglc.constraints.charsets import Intervals, overlaps
from sglc.constraints.errors import ConstraintError
from sglc.constraints.literals import regex_for_int_range
from sglc.constraints.regex import strip_anchors, used_chars

WHITESPACE = {"compact": "", "flexible": "[ ]?"}
"""The whitespace policies between JSON tokens, as outlines-core's whitespace patterns."""
PLACEHOLDER = "__sglc_subst_{}__"
"""The string constant standing for `SchemaCompiler.substitutions[i]` in the normalised schema."""
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "$schema",
                          "$id", "deprecated", "readOnly", "writeOnly", "$defs", "definitions"})
_TYPE_KEYWORDS: dict[str, frozenset[str]] = {
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "number": frozenset(),
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems"}),
    "boolean": frozenset(),
    "null": frozenset(),
}
_BOUNDS = _TYPE_KEYWORDS["integer"]
_ALL_TYPE_KEYWORDS = frozenset().union(*_TYPE_KEYWORDS.values())
_KNOWN = _ANNOTATIONS | _ALL_TYPE_KEYWORDS | {"type", "enum", "const", "anyOf", "$ref"}
_FORMATS = ("date", "date-time", "uuid")
_DATE_REGEX = r'"(?:[0-9]{4})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[1-2][0-9]|3[0-1])"'
_JSON_UNSAFE: Intervals = ((0, 0x1F), (0x22, 0x22), (0x5C, 0x5C))  # must be escaped in JSON
_UNSUPPORTED_HINTS = {
    "allOf": "merge the subschemas into one",
    "oneOf": "use anyOf (a regex cannot check that exactly one branch matches)",
    "not": "describe the allowed values instead",
    "if": "use anyOf over the cases",
    "then": "use anyOf over the cases",
    "else": "use anyOf over the cases",
    "patternProperties": "list the properties under properties",
    "dependentSchemas": "use anyOf over the cases",
    "dependentRequired": "use anyOf over the cases",
    "multipleOf": "check it on the value after generation",
    "minProperties": "list the properties under properties and require them",
    "maxProperties": "list the properties under properties",
    "nullable": 'use anyOf with {"type": "null"}',
}


@lru_cache(maxsize=64)
def _outlines_text(schema_text: str, whitespace: str) -> str:
    try:
        return build_regex_from_schema(schema_text, whitespace_pattern=WHITESPACE[whitespace])
    except ValueError as exc:  # pragma: no cover - the subset is checked first
        raise ConstraintError(f"outlines-core cannot compile the schema: {exc}",
                              pointer="") from None


def outlines_regex(schema: Any, whitespace: str) -> str:
    """outlines-core's regex of a (normalised) schema."""
    return _outlines_text(json.dumps(schema), whitespace)


def _pointer(base: str, *tokens: str | int) -> str:
    for token in tokens:
        base += "/" + str(token).replace("~", "~0").replace("/", "~1")
    return base


def _json_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    kinds = {"string": str, "boolean": bool, "object": dict, "array": list}
    return value is None if name == "null" else isinstance(value, kinds[name])


def _count(schema: dict[str, Any], key: str, ptr: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConstraintError(f"{key} must be a non-negative integer", pointer=_pointer(ptr, key))
    return value


def _check_range(schema: dict[str, Any], low: str, high: str, ptr: str, what: str) -> None:
    lo, hi = _count(schema, low, ptr), _count(schema, high, ptr)
    if lo is not None and hi is not None and lo > hi:
        raise ConstraintError(f"{high} is below {low}: no {what} fits",
                              pointer=_pointer(ptr, high))


class SchemaCompiler:
    """Walks a schema (each node once per $ref target), checks it against the subset and
    returns the schema handed to outlines-core: $refs inlined, type lists as anyOf, integer
    ranges and nested any-JSON values as placeholders (`substitutions` holds their regexes)."""

    def __init__(self, root: Any, whitespace: str) -> None:
        self.root = root
        self.whitespace = whitespace
        self.substitutions: list[str] = []
        self._active: set[str] = set()
        self._done: dict[str, Any] = {}
        self._any_placeholder: str | None = None

    def node(self, schema: Any, ptr: str) -> Any:
        if schema is True or schema == {}:
            return self._any(ptr)
        if schema is False:
            raise ConstraintError("the schema false accepts no value", pointer=ptr)
        if not isinstance(schema, dict):
            raise ConstraintError("a schema must be an object or a boolean", pointer=ptr)
        self._check_keywords(schema, ptr)
        self._active.add(ptr)
        try:
            return self._dispatch(schema, ptr)
        finally:
            self._active.discard(ptr)

    def _dispatch(self, schema: dict[str, Any], ptr: str) -> Any:
        if "$ref" in schema:
            return self._ref(schema, ptr)
        if "anyOf" in schema:
            return self._any_of(schema, ptr)
        if "enum" in schema or "const" in schema:
            return self._literal(schema, ptr)
        types = self._types(schema, ptr)
        if not types:
            return self._any(ptr)
        branches = [self._typed(schema, name, ptr) for name in types]
        return branches[0] if len(branches) == 1 else {"anyOf": branches}

    def _placeholder(self, regex: str) -> dict[str, str]:
        self.substitutions.append(regex)
        return {"const": PLACEHOLDER.format(len(self.substitutions) - 1)}

    def _any(self, ptr: str) -> Any:
        """Any JSON value. Nested, outlines-core's regex for {} lacks parentheses (so it is
        substituted), except as array items or map values, which are left out: outlines-core's
        own generic values there nest less deeply, and their automata build much faster."""
        if ptr == "":
            return {}
        if self._any_placeholder is None:
            self._any_placeholder = self._placeholder(outlines_regex({}, self.whitespace))["const"]
        return {"const": self._any_placeholder}

    def _check_keywords(self, schema: dict[str, Any], ptr: str) -> None:
        for key in schema:
            if key not in _KNOWN:
                raise ConstraintError(f"unsupported schema keyword {key!r}",
                                      pointer=_pointer(ptr, key),
                                      hint=_UNSUPPORTED_HINTS.get(key))
        for key in ("$defs", "definitions"):
            if key in schema and not isinstance(schema[key], dict):
                raise ConstraintError(f"{key} must be an object", pointer=_pointer(ptr, key))

    def _only(self, schema: dict[str, Any], ptr: str, owner: str, *allowed: str) -> None:
        for key in schema:
            if key not in _ANNOTATIONS and key != owner and key not in allowed:
                raise ConstraintError(f"{key!r} cannot be combined with {owner!r}",
                                      pointer=_pointer(ptr, key))

    def _ref(self, schema: dict[str, Any], ptr: str) -> Any:
        self._only(schema, ptr, "$ref")
        ref, where = schema["$ref"], _pointer(ptr, "$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ConstraintError("only local references (#/...) are supported", pointer=where)
        target = unquote(ref[1:])
        if target and not target.startswith("/"):
            raise ConstraintError(f"unsupported reference {ref!r}", pointer=where,
                                  hint="refer by JSON pointer, e.g. #/$defs/Name")
        if target in self._active:
            raise ConstraintError(f"recursive reference {ref!r}: a regex cannot express "
                                  "unbounded nesting", pointer=where,
                                  hint="write the nesting out to a fixed depth")
        if target not in self._done:
            self._done[target] = self.node(self._resolve(target, where), target)
        return self._done[target]

    def _resolve(self, target: str, where: str) -> Any:
        node = self.root
        for token in target.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise ConstraintError(f"reference to a missing schema #{target}", pointer=where)
        return node

    def _any_of(self, schema: dict[str, Any], ptr: str) -> Any:
        self._only(schema, ptr, "anyOf")
        branches = schema["anyOf"]
        if not isinstance(branches, list) or not branches:
            raise ConstraintError("anyOf must be a non-empty list of schemas",
                                  pointer=_pointer(ptr, "anyOf"))
        out = [self.node(b, _pointer(ptr, "anyOf", i)) for i, b in enumerate(branches)]
        return self._any(ptr) if any(self._is_any(b) for b in out) else {"anyOf": out}

    def _is_any(self, schema: Any) -> bool:
        return schema == {} or schema == {"const": self._any_placeholder}

    def _literal(self, schema: dict[str, Any], ptr: str) -> Any:
        key = "enum" if "enum" in schema else "const"
        self._only(schema, ptr, key, "type")
        values = schema[key] if key == "enum" else [schema[key]]
        if not isinstance(values, list) or not values:
            raise ConstraintError("enum must be a non-empty list", pointer=_pointer(ptr, key))
        types = self._types({"type": schema["type"]}, ptr) if "type" in schema else []
        for i, value in enumerate(values):
            if types and not any(_json_type(value, name) for name in types):
                where = _pointer(ptr, key, i) if key == "enum" else _pointer(ptr, key)
                raise ConstraintError(f"{value!r} does not have type {schema['type']}",
                                      pointer=where)
        return {key: schema[key]}

    def _types(self, schema: dict[str, Any], ptr: str) -> list[str]:
        declared = schema.get("type")
        keywords = [key for key in schema if key in _ALL_TYPE_KEYWORDS]
        if declared is None:
            names = [n for n, kws in _TYPE_KEYWORDS.items() if kws.intersection(keywords)]
            if len(names) > 1:
                raise ConstraintError(f"keywords of several types ({', '.join(names)}) without "
                                      "a type", pointer=ptr, hint="add a type")
        else:
            names = [declared] if isinstance(declared, str) else declared
            self._check_type_names(names, ptr)
        for key in keywords:
            self._check_applies(key, names, ptr)
        return names

    def _check_type_names(self, names: Any, ptr: str) -> None:
        if (not isinstance(names, list) or not names or len(set(map(str, names))) < len(names)
                or any(name not in _TYPE_KEYWORDS for name in names)):
            raise ConstraintError(f"unsupported type {names!r}", pointer=_pointer(ptr, "type"),
                                  hint=f"one or a list of {', '.join(_TYPE_KEYWORDS)}")

    def _check_applies(self, key: str, names: list[str], ptr: str) -> None:
        if key in _BOUNDS and "number" in names:
            raise ConstraintError(f"{key} is not supported for type number: a range of floats "
                                  "has no exact regex", pointer=_pointer(ptr, key),
                                  hint="use type integer, or check the bound after generation")
        if not any(key in _TYPE_KEYWORDS[name] for name in names):
            raise ConstraintError(f"{key} does not apply to type {' or '.join(names)}",
                                  pointer=_pointer(ptr, key))

    def _typed(self, schema: dict[str, Any], name: str, ptr: str) -> Any:
        if name == "string":
            return self._string(schema, ptr)
        if name == "integer":
            return self._integer(schema, ptr)
        if name == "object":
            return self._object(schema, ptr)
        if name == "array":
            return self._array(schema, ptr)
        return {"type": name}

    def _string(self, schema: dict[str, Any], ptr: str) -> Any:
        _check_range(schema, "minLength", "maxLength", ptr, "string")
        lengths = {k: schema[k] for k in ("minLength", "maxLength") if k in schema}
        shapes = [k for k in ("pattern", "format") if k in schema]
        if len(shapes) == 2:
            raise ConstraintError("pattern and format cannot be combined",
                                  pointer=_pointer(ptr, "format"))
        if shapes and lengths:
            raise ConstraintError(f"{next(iter(lengths))} cannot be combined with {shapes[0]} "
                                  "(outlines-core would drop it)",
                                  pointer=_pointer(ptr, next(iter(lengths))),
                                  hint="fold the length into the pattern, e.g. [a-z]{2,8}")
        if "pattern" in schema:
            return {"type": "string", "pattern": self._pattern(schema["pattern"], ptr)}
        if "format" in schema:
            name = self._format(schema["format"], ptr)
            if name == "date":  # outlines-core's date regex has \d{4}: non-ASCII digits too
                return self._placeholder(_DATE_REGEX)
            return {"type": "string", "format": name}
        return {"type": "string", **lengths}

    def _pattern(self, pattern: Any, ptr: str) -> str:
        where = _pointer(ptr, "pattern")
        if not isinstance(pattern, str):
            raise ConstraintError("pattern must be a string", pointer=where)
        try:
            unsafe = overlaps(used_chars(pattern), _JSON_UNSAFE)
        except ConstraintError as exc:
            raise type(exc)(exc.message, pointer=where, position=exc.position,
                            hint=exc.hint) from None
        if unsafe:
            raise ConstraintError("pattern can match '\"', '\\' or a control character, which "
                                  "a JSON string must escape", pointer=where,
                                  hint='exclude them, e.g. [^"\\\\\\x00-\\x1f] instead of .')
        return f"(?:{strip_anchors(pattern)})"

    def _format(self, name: Any, ptr: str) -> str:
        if name not in _FORMATS:
            raise ConstraintError(f"format {name!r} is not supported",
                                  pointer=_pointer(ptr, "format"),
                                  hint=f"use one of {', '.join(_FORMATS)}, or a pattern")
        return name

    def _integer(self, schema: dict[str, Any], ptr: str) -> Any:
        lo, hi, last = None, None, None
        for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            if key not in schema:
                continue
            value, last = schema[key], key
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConstraintError(f"{key} must be a number", pointer=_pointer(ptr, key))
            if key.endswith("imum") and key.startswith(("min", "exclusiveMin")):
                bound = math.ceil(value) if key == "minimum" else math.floor(value) + 1
                lo = bound if lo is None else max(lo, bound)
            else:
                bound = math.floor(value) if key == "maximum" else math.ceil(value) - 1
                hi = bound if hi is None else min(hi, bound)
        if last is None:
            return {"type": "integer"}
        if lo is not None and hi is not None and lo > hi:
            raise ConstraintError("no integer satisfies the bounds", pointer=_pointer(ptr, last))
        return self._placeholder(regex_for_int_range(lo, hi))

    def _object(self, schema: dict[str, Any], ptr: str) -> Any:
        out: dict[str, Any] = {"type": "object"}
        props = schema.get("properties")
        if props is not None:
            out["properties"] = self._properties(props, _pointer(ptr, "properties"))
        required = self._required(schema.get("required", []), props or {}, ptr)
        if required:
            out["required"] = required
        extra = schema.get("additionalProperties", True)
        if not isinstance(extra, (bool, dict)):
            raise ConstraintError("additionalProperties must be a schema",
                                  pointer=_pointer(ptr, "additionalProperties"))
        if props is not None and extra is False:
            out["additionalProperties"] = False
        elif props is None and extra is False:
            out["properties"] = {}
        elif props is None and extra is not True:
            values = self.node(extra, _pointer(ptr, "additionalProperties"))
            if not self._is_any(values):
                out["additionalProperties"] = values
        return out

    def _properties(self, props: Any, ptr: str) -> dict[str, Any]:
        if not isinstance(props, dict):
            raise ConstraintError("properties must be an object", pointer=ptr)
        out = {}
        for name, sub in props.items():
            where = _pointer(ptr, name)
            if json.dumps(name, ensure_ascii=False) != f'"{name}"':
                raise ConstraintError(f"property name {name!r} needs escaping in JSON, which "
                                      "outlines-core does not do", pointer=where,
                                      hint='drop the ", \\ or control character from the name')
            out[name] = self.node(sub, where)
        return out

    def _required(self, required: Any, props: dict[str, Any], ptr: str) -> list[str]:
        if not isinstance(required, list):
            raise ConstraintError("required must be a list", pointer=_pointer(ptr, "required"))
        for i, name in enumerate(required):
            if name not in props or name in required[:i]:
                raise ConstraintError(f"required property {name!r} is not listed in properties"
                                      if name not in props else f"{name!r} is required twice",
                                      pointer=_pointer(ptr, "required", i),
                                      hint="describe every required property under properties")
        return required

    def _array(self, schema: dict[str, Any], ptr: str) -> Any:
        if schema.get("uniqueItems", False) is not False:
            raise ConstraintError("uniqueItems is not supported",
                                  pointer=_pointer(ptr, "uniqueItems"),
                                  hint="check it on the value after generation")
        if "prefixItems" in schema:
            return self._tuple(schema, ptr)
        out: dict[str, Any] = {"type": "array"}
        items = schema.get("items", True)
        if isinstance(items, list):
            raise ConstraintError("items as a list is not supported",
                                  pointer=_pointer(ptr, "items"), hint="use prefixItems")
        if items is False:
            raise ConstraintError("items false allows only []", pointer=_pointer(ptr, "items"),
                                  hint="use maxItems: 0")
        values = self.node(items, _pointer(ptr, "items"))
        if not self._is_any(values):
            out["items"] = values
        _check_range(schema, "minItems", "maxItems", ptr, "array")
        out.update({k: schema[k] for k in ("minItems", "maxItems") if k in schema})
        return out

    def _tuple(self, schema: dict[str, Any], ptr: str) -> Any:
        for key in ("minItems", "maxItems", "items"):
            if key in schema and not (key == "items" and schema[key] is False):
                raise ConstraintError(f"{key} cannot be combined with prefixItems "
                                      "(outlines-core generates exactly the prefix)",
                                      pointer=_pointer(ptr, key))
        prefix = schema["prefixItems"]
        if not isinstance(prefix, list):
            raise ConstraintError("prefixItems must be a list of schemas",
                                  pointer=_pointer(ptr, "prefixItems"))
        return {"type": "array", "prefixItems": [self.node(s, _pointer(ptr, "prefixItems", i))
                                                 for i, s in enumerate(prefix)]}


__all__ = ["PLACEHOLDER", "WHITESPACE", "SchemaCompiler", "outlines_regex"]
