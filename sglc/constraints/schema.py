"""JSON schemas to canonical regexes: the supported subset, validated and normalised (a JSON
pointer on every error) before outlines-core builds the regex.

JSON schema subset (`regex_for_schema`; anything else is a `ConstraintError` with the JSON
pointer of the offending keyword, checked before outlines-core sees the schema):

    any schema      title description default examples $comment $schema $id deprecated readOnly
                    writeOnly (ignored); $defs / definitions; true and {} (any JSON value: at the
                    root outlines-core's regex; nested, the same in a group -- outlines-core
                    leaves it bare, so the alternation escapes the object -- except as array items
                    or map values, left to outlines-core's shallower generic values, whose
                    automata build in seconds rather than minutes); false is an error
    $ref            local JSON pointers ("#", "#/$defs/Name", "#/properties/a", ...), inlined;
                    no sibling keywords but annotations; a cycle is an error at the closing $ref
    type            a name or a list of names (a list becomes anyOf, one branch per type)
    enum / const    non-empty enum; only annotations and a `type` (which every value must have)
                    beside them; a string value of a non-string type is an error
    anyOf           non-empty; only annotations beside it; with an any-JSON branch, any JSON
    string          minLength maxLength, or pattern (the dialect above; matched against the raw
                    JSON text between the quotes, so it may not match " \\ or control characters,
                    and it is anchored: a subset of JSON Schema's search semantics), or format
                    date / date-time / uuid (outlines-core's regexes for time, email and uri can
                    produce invalid JSON strings; its date regexes do not check the calendar, so a
                    format-asserting validator can still refuse e.g. 0000-02-31); lengths cannot
                    be combined with pattern/format (outlines-core would drop them)
    integer         minimum maximum exclusiveMinimum exclusiveMaximum (numbers) -- compiled here
                    to an exact decimal range regex (`regex_for_int_range`), since outlines-core
                    ignores them
    number          no bounds: rejected (a float range has no compact exact regex)
    object          properties (names that need no JSON escaping), required (each one listed in
                    properties), additionalProperties (with properties, additional properties are
                    never generated; without, a schema for the values of a map, or false for {})
    array           items (one schema), minItems maxItems, uniqueItems false; or prefixItems
                    (a fixed tuple) with at most `items: false` beside it

Rejected: allOf oneOf not if/then/else dependentSchemas dependentRequired patternProperties
propertyNames unevaluated* contains uniqueItems:true multipleOf min/maxProperties, and any
unknown keyword (outlines-core would ignore it, and the output might not validate).

Whitespace between JSON tokens: "compact" (none, the default) or "flexible" (`[ ]?`, one
optional space, outlines-core's default). Every text the schema regex accepts is valid JSON that
validates against the schema (outlines-core's regexes are a subset: e.g. no \\u escapes in
strings, exponents carry a sign, objects list properties in schema order).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from outlines_core.json_schema import build_regex_from_schema

from sglc.constraints.canonical import regex_for_int_range
from sglc.constraints.regex import (
    ConstraintError,
    Intervals,
    _analyze,
    _chars_of,
    _overlaps,
    _strip_anchors,
    check_regex,
)

_WHITESPACE = {"compact": "", "flexible": "[ ]?"}
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
_PLACEHOLDER = "__sglc_subst_{}__"
_JSON_REGEXES: set[str] = set()  # regexes from regex_for_schema: their texts are JSON values


def is_json_regex(pattern: str) -> bool:
    """Whether `pattern` came from `regex_for_schema` (every text it accepts is JSON)."""
    for whitespace in _WHITESPACE:  # the any-JSON regexes are always known
        regex_for_schema({}, whitespace)
    return pattern in _JSON_REGEXES


def regex_for_schema(schema: dict[str, Any] | bool | str, whitespace: str = "compact") -> str:
    """The canonical regex of a JSON schema (a dict, or its JSON text; property order matters)
    in the supported subset: every text it accepts is JSON valid against the schema.
    `whitespace` between JSON tokens: "compact" (none) or "flexible" (one optional space)."""
    if whitespace not in _WHITESPACE:
        raise ConstraintError(f"unknown whitespace policy {whitespace!r}",
                              hint="compact or flexible")
    if not isinstance(schema, str):
        schema = json.dumps(schema)
    return _schema_regex(schema, whitespace)


@lru_cache(maxsize=256)
def _schema_regex(text: str, whitespace: str) -> str:
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConstraintError(f"the schema is not JSON: {exc}", pointer="") from None
    compiler = _SchemaCompiler(schema, whitespace)
    regex = _outlines(compiler.node(schema, ""), whitespace)
    for i, sub in enumerate(compiler.substitutions):
        regex = regex.replace(_outlines({"const": _PLACEHOLDER.format(i)}, whitespace),
                              f"(?:{sub})")
    try:
        check_regex(regex)
    except ConstraintError as exc:  # pragma: no cover - outlines-core produced a bad regex
        raise ConstraintError(f"internal: the schema's regex is unusable: {exc}",
                              pointer="") from None
    _JSON_REGEXES.add(regex)
    return regex


@lru_cache(maxsize=64)
def _outlines_text(schema_text: str, whitespace: str) -> str:
    try:
        return build_regex_from_schema(schema_text, whitespace_pattern=_WHITESPACE[whitespace])
    except ValueError as exc:  # pragma: no cover - the subset is checked first
        raise ConstraintError(f"outlines-core cannot compile the schema: {exc}",
                              pointer="") from None


def _outlines(schema: Any, whitespace: str) -> str:
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


class _SchemaCompiler:
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
        return {"const": _PLACEHOLDER.format(len(self.substitutions) - 1)}

    def _any(self, ptr: str) -> Any:
        """Any JSON value. Nested, outlines-core's regex for {} lacks parentheses (so it is
        substituted), except as array items or map values, which are left out: outlines-core's
        own generic values there nest less deeply, and their automata build much faster."""
        if ptr == "":
            return {}
        if self._any_placeholder is None:
            self._any_placeholder = self._placeholder(_outlines({}, self.whitespace))["const"]
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
            tree = _analyze(pattern)
        except ConstraintError as exc:
            raise ConstraintError(exc.message, pointer=where, position=exc.position,
                                  hint=exc.hint) from None
        if _matches_unsafe(tree.data):
            raise ConstraintError("pattern can match '\"', '\\' or a control character, which "
                                  "a JSON string must escape", pointer=where,
                                  hint='exclude them, e.g. [^"\\\\\\x00-\\x1f] instead of .')
        return f"(?:{_strip_anchors(pattern)})"

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


def _matches_unsafe(items: Sequence[Any]) -> bool:
    """Whether a parse tree can match a character a JSON string must escape."""
    return _overlaps(_chars_of(items), _JSON_UNSAFE)


__all__ = ["is_json_regex", "regex_for_schema"]
