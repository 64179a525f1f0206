"""A JSON schema checked against the supported subset (a JSON pointer on every error) and
normalised into the schema outlines-core turns into a regex (`SchemaCompiler`).

The subset it accepts is listed in `schema.py`.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import unquote

from sglc.constraints.ecmascript import string_pattern_regex
from sglc.constraints.errors import ConstraintError
from sglc.constraints.literals import regex_for_int_range, regex_for_multiples
from sglc.constraints.schema_common import (
    ANNOTATIONS,
    PLACEHOLDER,
    WHITESPACE,
    check_range,
    count,
    outlines_regex,
    pointer,
    substantive,
    without,
)
from sglc.constraints.schema_containers import array_node, object_node
from sglc.constraints.schema_formats import FORMAT_REGEXES
from sglc.constraints.schema_literals import literal
from sglc.constraints.schema_merge import both, merge

_TYPE_KEYWORDS: dict[str, frozenset[str]] = {
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                          "multipleOf"}),
    "number": frozenset(),
    "object": frozenset({"properties", "required", "additionalProperties", "patternProperties",
                         "propertyNames", "minProperties", "maxProperties", "dependentRequired",
                         "dependentSchemas", "unevaluatedProperties"}),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems",
                        "contains", "minContains", "maxContains", "unevaluatedItems"}),
    "boolean": frozenset(),
    "null": frozenset(),
}
_BOUNDS = _TYPE_KEYWORDS["integer"]
_ALL_TYPE_KEYWORDS = frozenset().union(*_TYPE_KEYWORDS.values())
_APPLICATORS = frozenset({"anyOf", "oneOf", "allOf", "not", "if", "then", "else", "$ref"})
_KNOWN = ANNOTATIONS | _ALL_TYPE_KEYWORDS | _APPLICATORS | {"type", "enum", "const"}
DEFAULT_MAX_REF_DEPTH = 3
"""How many times a recursive $ref is expanded inside itself before the recursion is cut
(the innermost expansion then allows no value, so only optional places may recurse)."""
_UNSUPPORTED_HINTS = {
    "not": "describe the allowed values instead",
    "nullable": 'use anyOf with {"type": "null"}',
    "$dynamicRef": "use $ref",
    "$anchor": "refer by JSON pointer, e.g. #/$defs/Name",
}


def _anchor(node: Any, name: str, ptr: str) -> str | None:
    """The JSON pointer of the subschema whose $anchor is `name` (None: there is none)."""
    if isinstance(node, dict):
        if node.get("$anchor") == name:
            return ptr
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    for key, value in items:
        found = _anchor(value, name, pointer(ptr, key))
        if found is not None:
            return found
    return None


_UNEVALUATED = ("unevaluatedProperties", "unevaluatedItems")


def _has_ref(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" in node or any(_has_ref(v) for v in node.values())
    return isinstance(node, list) and any(_has_ref(v) for v in node)


def _with_all_of(schema: dict[str, Any], *branches: Any) -> dict[str, Any]:
    """`schema` with `branches` added to its allOf: in place, as its own keywords see them."""
    return {**schema, "allOf": [*schema.get("allOf", []), *branches]}


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or isinstance(value, float) and value.is_integer():
        return "integer"
    kinds = {float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else kinds[type(value)]


def _instance_types(schema: Any) -> set[str] | None:
    """Types that every instance of `schema` has (None: not known from its keywords)."""
    if schema is False:
        return set()
    if not isinstance(schema, dict):
        return None
    if "enum" in schema and isinstance(schema["enum"], list):
        return {_value_type(v) for v in schema["enum"]}
    if "const" in schema:
        return {_value_type(schema["const"])}
    if isinstance(schema.get("type"), (str, list)):
        names = schema["type"]
        return {names} if isinstance(names, str) else set(map(str, names))
    if isinstance(schema.get("anyOf"), list):
        found = [_instance_types(b) for b in schema["anyOf"]]
        return None if any(f is None for f in found) else set().union(*found)
    return None


class SchemaCompiler:
    """Walks a schema, checks it against the subset and returns the schema handed to
    outlines-core: $refs inlined (recursive ones `max_ref_depth` deep), allOf / if merged,
    type lists and applicators as anyOf, and what outlines-core cannot say (integer ranges,
    patterns, formats, arrays beyond its forms, nested any-JSON values) as placeholders whose
    regexes `substitutions` holds. `node` returns None for a schema no value satisfies."""

    def __init__(self, root: Any, whitespace: str,
                 max_ref_depth: int = DEFAULT_MAX_REF_DEPTH) -> None:
        self.root = root
        self.whitespace = whitespace
        self.max_ref_depth = max_ref_depth
        self.substitutions: list[str] = []
        self.never_pointer: str | None = None  # where the first value-less schema was
        self.never_reason: str | None = None  # why, where the subset (not the schema) is empty
        self.first_cut: str | None = None  # the first recursive $ref cut at max_ref_depth
        self._depth: dict[str, int] = {}
        self._done: dict[str, Any] = {}
        self._num_cuts = 0
        self._any_placeholder: str | None = None

    # -- entry -------------------------------------------------------------------------------
    def node(self, schema: Any, ptr: str) -> Any:
        if schema is True or schema == {}:
            return self._any(ptr)
        if schema is False:
            return self.never(ptr)
        if not isinstance(schema, dict):
            raise ConstraintError("a schema must be an object or a boolean", pointer=ptr)
        self._check_keywords(schema, ptr)
        if not substantive(schema):
            return self._any(ptr)
        return self._dispatch(schema, ptr)

    def fresh(self) -> SchemaCompiler:
        return SchemaCompiler(self.root, "compact", self.max_ref_depth)

    def never(self, ptr: str) -> None:
        if self.never_pointer is None:
            self.never_pointer = ptr
        return None

    def regex(self, normalised: Any) -> str:
        """The regex of a normalised schema, placeholders substituted."""
        regex = outlines_regex(normalised, self.whitespace)
        for i in reversed(range(len(self.substitutions))):
            regex = regex.replace(outlines_regex({"const": PLACEHOLDER.format(i)},
                                                 self.whitespace), f"(?:{self.substitutions[i]})")
        return regex

    def placeholder(self, regex: str) -> dict[str, str]:
        self.substitutions.append(regex)
        return {"const": PLACEHOLDER.format(len(self.substitutions) - 1)}

    def is_any(self, schema: Any) -> bool:
        return schema == {} or schema == {"const": self._any_placeholder}

    def _dispatch(self, schema: dict[str, Any], ptr: str) -> Any:
        if "$ref" in schema:
            if substantive(without(schema, "$ref")):
                return self._all_of(schema, ptr)
            return self._ref(schema, ptr)
        if "allOf" in schema:
            return self._all_of(schema, ptr)
        if any(key in schema for key in ("if", "then", "else")):
            return self._conditional(schema, ptr)
        if "anyOf" in schema or "oneOf" in schema:
            return self._branches(schema, ptr)
        if "not" in schema:
            return self._not(schema, ptr)
        if "enum" in schema or "const" in schema:
            return literal(self, schema, ptr)
        types = self.types(schema, ptr)
        if not types:
            return self._any(ptr)
        branches = [b for b in (self._typed(schema, name, ptr) for name in types)
                    if b is not None]
        if not branches:
            return None
        return branches[0] if len(branches) == 1 else {"anyOf": branches}

    def _any(self, ptr: str) -> Any:
        """Any JSON value. Nested, outlines-core's regex for {} lacks parentheses (so it is
        substituted), except as array items or map values, which are left out: outlines-core's
        own generic values there nest less deeply, and their automata build much faster."""
        if ptr == "":
            return {}
        if self._any_placeholder is None:
            self._any_placeholder = self.placeholder(outlines_regex({}, self.whitespace))["const"]
        return {"const": self._any_placeholder}

    def _check_keywords(self, schema: dict[str, Any], ptr: str) -> None:
        for key in schema:
            if key not in _KNOWN:
                raise ConstraintError(f"unsupported schema keyword {key!r}",
                                      pointer=pointer(ptr, key),
                                      hint=_UNSUPPORTED_HINTS.get(key))
        for key in ("$defs", "definitions"):
            if key in schema and not isinstance(schema[key], dict):
                raise ConstraintError(f"{key} must be an object", pointer=pointer(ptr, key))
        if "$id" in schema and schema is not self.root and _has_ref(schema):
            raise ConstraintError("$id below the root is supported only without $ref inside "
                                  "(it would change what they resolve to)",
                                  pointer=pointer(ptr, "$id"))

    # -- references and applicators ----------------------------------------------------------
    def _target(self, schema: dict[str, Any], ptr: str) -> tuple[str, Any]:
        ref, where = schema["$ref"], pointer(ptr, "$ref")
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ConstraintError("only local references (#/...) are supported", pointer=where)
        target = unquote(ref[1:])
        if target and not target.startswith("/"):
            found = _anchor(self.root, target, "")
            if found is None:
                raise ConstraintError(f"unsupported reference {ref!r}", pointer=where,
                                      hint="refer by JSON pointer, e.g. #/$defs/Name")
            target = found
        return target, self._resolve(target, where)

    def _ref(self, schema: dict[str, Any], ptr: str) -> Any:
        target, resolved = self._target(schema, ptr)
        depth = self._depth.get(target, 0)
        if depth >= self.max_ref_depth:
            self._num_cuts += 1
            if self.first_cut is None:
                self.first_cut = pointer(ptr, "$ref")
            return self.never(pointer(ptr, "$ref"))
        if target in self._done:
            return self._done[target]
        cuts, fresh = self._num_cuts, not any(self._depth.values())
        self._depth[target] = depth + 1
        try:
            out = self.node(resolved, target)
        finally:
            self._depth[target] = depth
        if fresh and cuts == self._num_cuts:
            self._done[target] = out
        return out

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

    def _flatten(self, schema: Any, ptr: str, seen: frozenset[str]) -> list[dict[str, Any]] | None:
        """The conjuncts of a schema: $ref and allOf at its top level expanded (None: false)."""
        if schema is True:
            return []
        if schema is False:
            return self.never(ptr)
        if not isinstance(schema, dict):
            raise ConstraintError("a schema must be an object or a boolean", pointer=ptr)
        self._check_keywords(schema, ptr)
        parts: list[dict[str, Any]] = []
        if "$ref" in schema:
            target, resolved = self._target(schema, ptr)
            if target in seen:
                raise ConstraintError(f"recursive reference {schema['$ref']!r} in allOf",
                                      pointer=pointer(ptr, "$ref"))
            sub = self._flatten(resolved, target, seen | {target})
            if sub is None:
                return None
            parts += sub
        if "allOf" in schema:
            branches = schema["allOf"]
            if not isinstance(branches, list) or not branches:
                raise ConstraintError("allOf must be a non-empty list of schemas",
                                      pointer=pointer(ptr, "allOf"))
            for i, branch in enumerate(branches):
                sub = self._flatten(branch, pointer(ptr, "allOf", i), seen)
                if sub is None:
                    return None
                parts += sub
        rest = without(schema, "$ref", "allOf")
        if substantive(rest):
            parts.append(rest)
        return parts

    def _all_of(self, schema: dict[str, Any], ptr: str) -> Any:
        # NOTE: the schema's own unevaluated* see what its allOf / $ref / if branches
        # evaluate, so they are added after the merge (a branch's own ones are cross terms)
        own = {k: schema[k] for k in _UNEVALUATED if k in schema}
        parts = self._flatten(without(schema, *_UNEVALUATED), ptr, frozenset())
        if parts is None:
            return None
        merged: dict[str, Any] | bool = {}
        for part in parts:
            merged = merge(merged, part, ptr) if isinstance(merged, dict) else merged
        if merged is False:
            return self.never(ptr)
        # a branch's unevaluated* saw only that branch: from here on it closes the merged
        # schema like additionalProperties / items (its cross terms were applied by merge)
        for key, closing in zip(_UNEVALUATED, ("additionalProperties", "items"), strict=True):
            if key in merged:
                merged[closing] = both(merged.get(closing, True), merged.pop(key))
        for key, value in own.items():
            merged[key] = value
        return self.node(merged, ptr)

    def _conditional(self, schema: dict[str, Any], ptr: str) -> Any:
        """if/then/else as anyOf(if and then, not-if and else), keeping the cases this
        subset can say (at least one)."""
        rest = without(schema, "if", "then", "else")
        if "if" not in schema:
            return self.node(rest, ptr)
        cases = [_with_all_of(rest, schema["if"], schema.get("then", True)),
                 _with_all_of(rest, {"not": schema["if"]}, schema.get("else", True))]
        out, first_error = [], None
        for case in cases:
            try:
                out.append(self.node(case, ptr))
            except ConstraintError as exc:
                first_error = first_error or exc
        kept = [o for o in out if o is not None]
        if not kept and first_error is not None:
            raise first_error
        if not kept:
            return None
        return self._any(ptr) if any(map(self.is_any, kept)) else (
            kept[0] if len(kept) == 1 else {"anyOf": kept})

    def _branches(self, schema: dict[str, Any], ptr: str) -> Any:
        key = "anyOf" if "anyOf" in schema else "oneOf"  # a oneOf beside stays in `rest`
        branches, rest = schema[key], without(schema, key)
        if not isinstance(branches, list) or not branches:
            raise ConstraintError(f"{key} must be a non-empty list of schemas",
                                  pointer=pointer(ptr, key))
        if key == "oneOf" and len(branches) > 1:
            kept = self._exclusive(branches, rest, ptr)
        else:
            kept = [self.node(_with_all_of(rest, branch) if substantive(rest) else branch,
                              pointer(ptr, key, i)) for i, branch in enumerate(branches)]
        kept = [o for o in kept if o is not None]
        if not kept:
            return None
        if any(map(self.is_any, kept)):
            return self._any(ptr)
        return kept[0] if len(kept) == 1 else {"anyOf": kept}

    def _exclusive(self, branches: list[Any], rest: dict[str, Any], ptr: str) -> list[Any]:
        """oneOf: each branch and not the others (`_not`: the other branches must name their
        types). A branch that cannot be said so is left out; none left is an error."""
        out, first_error = [], None
        for i, branch in enumerate(branches):
            others = [{"not": b} for j, b in enumerate(branches) if j != i]
            try:
                out.append(self.node(_with_all_of(rest, branch, *others), pointer(ptr, "oneOf", i)))
            except ConstraintError as exc:
                first_error = first_error or exc
        if not out and first_error is not None:
            raise ConstraintError("oneOf needs branches whose types tell them apart (a regex "
                                  f"cannot check that exactly one matches): "
                                  f"{first_error.message}", pointer=pointer(ptr, "oneOf"),
                                  hint="use anyOf, or give each branch its own type") from None
        return out

    def _not(self, schema: dict[str, Any], ptr: str) -> Any:
        """not X: when X says which types its instances have, the other types (a subset
        of not X); not not X is X."""
        rest, inner, where = without(schema, "not"), schema["not"], pointer(ptr, "not")
        if inner is False:
            return self.node(rest, ptr)
        if inner is True or (isinstance(inner, dict) and not substantive(inner)):
            return self.never(where)
        if isinstance(inner, dict) and set(inner) - ANNOTATIONS == {"not"}:
            return self.node({"allOf": [rest, inner["not"]]}, ptr)
        excluded = _instance_types(inner)
        if excluded is None:
            raise ConstraintError("not is supported only around a schema that names its "
                                  "types (type, enum or const)", pointer=where,
                                  hint=_UNSUPPORTED_HINTS["not"])
        if "number" in excluded or "integer" in excluded:
            excluded = {*excluded, "number", "integer"}  # number's regex has the integers
        allowed = [t for t in _TYPE_KEYWORDS if t not in excluded]
        if not allowed:
            return self.never(where)
        node = self.node({"allOf": [rest, {"type": allowed}]}, ptr)
        if node is None and self.never_reason is None and "type" not in inner:
            # not {const/enum} of the schema's own type: a subset without that type is empty
            self.never_pointer = where
            self.never_reason = ("not around a const or enum of the schema's own type is not "
                                 "supported: the regex cannot leave out single values")
        return node

    # -- types -------------------------------------------------------------------------------
    def types(self, schema: dict[str, Any], ptr: str) -> list[str]:
        declared = schema.get("type")
        keywords = [key for key in schema if key in _ALL_TYPE_KEYWORDS]
        if declared is None:
            names = [n for n, kws in _TYPE_KEYWORDS.items() if kws.intersection(keywords)]
        else:
            names = [declared] if isinstance(declared, str) else declared
            self._check_type_names(names, ptr)
        if "number" in names and any(key in _BOUNDS for key in keywords):
            key = next(key for key in keywords if key in _BOUNDS)
            why = "floats" if key == "multipleOf" else "a range of floats"
            raise ConstraintError(f"{key} is not supported for type number: {why} "
                                  "has no exact regex", pointer=pointer(ptr, key),
                                  hint="use type integer, or check the bound after generation")
        if declared is not None:
            for key in keywords:
                self._check_applies(key, names, ptr)
        return names

    def _multiples(self, schema: dict[str, Any], ptr: str) -> Any:
        where, k = pointer(ptr, "multipleOf"), schema["multipleOf"]
        bounds = [key for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
                  if key in schema]
        if bounds:
            raise ConstraintError(f"multipleOf cannot be combined with {bounds[0]}",
                                  pointer=where, hint="list the values with enum")
        if isinstance(k, bool) or not isinstance(k, (int, float)) or k <= 0:
            raise ConstraintError("multipleOf must be a positive number", pointer=where)
        regex = regex_for_multiples(int(k)) if float(k).is_integer() else None
        if regex is None:
            raise ConstraintError(f"multipleOf {k} is not supported: only integers of the form "
                                  "2^a * 5^b (divisibility seen in the last digits)",
                                  pointer=where, hint="check it on the value after generation")
        return self.placeholder(regex)

    def _check_type_names(self, names: Any, ptr: str) -> None:
        if (not isinstance(names, list) or not names or len(set(map(str, names))) < len(names)
                or any(name not in _TYPE_KEYWORDS for name in names)):
            raise ConstraintError(f"unsupported type {names!r}", pointer=pointer(ptr, "type"),
                                  hint=f"one or a list of {', '.join(_TYPE_KEYWORDS)}")

    def _check_applies(self, key: str, names: list[str], ptr: str) -> None:
        if not any(key in _TYPE_KEYWORDS[name] for name in names):
            raise ConstraintError(f"{key} does not apply to type {' or '.join(names)}",
                                  pointer=pointer(ptr, key))

    def _typed(self, schema: dict[str, Any], name: str, ptr: str) -> Any:
        if name == "string":
            return self._string(schema, ptr)
        if name == "integer":
            return self._integer(schema, ptr)
        if name == "object":
            return object_node(self, schema, ptr)
        if name == "array":
            return array_node(self, schema, ptr)
        return {"type": name}

    def _string(self, schema: dict[str, Any], ptr: str) -> Any:
        check_range(schema, "minLength", "maxLength", ptr, "string")
        lengths = {k: count(schema, k, ptr) for k in ("minLength", "maxLength") if k in schema}
        shapes = [k for k in ("pattern", "format") if k in schema]
        if len(shapes) == 2:
            raise ConstraintError("pattern and format cannot be combined",
                                  pointer=pointer(ptr, "format"))
        if shapes and lengths:
            raise ConstraintError(f"{next(iter(lengths))} cannot be combined with {shapes[0]}",
                                  pointer=pointer(ptr, next(iter(lengths))),
                                  hint="fold the length into the pattern, e.g. [a-z]{2,8}")
        if "pattern" in schema:
            where = pointer(ptr, "pattern")
            try:
                body = string_pattern_regex(schema["pattern"])
            except ConstraintError as exc:
                raise type(exc)(exc.message, pointer=where, position=exc.position,
                                hint=exc.hint) from None
            return self.placeholder(f'"{body}"')
        if "format" in schema:
            name = schema["format"]
            if name not in FORMAT_REGEXES:
                raise ConstraintError(f"format {name!r} is not supported",
                                      pointer=pointer(ptr, "format"),
                                      hint=f"use one of {', '.join(FORMAT_REGEXES)}, "
                                           "or a pattern")
            return self.placeholder(f'"{FORMAT_REGEXES[name]}"')
        return {"type": "string", **lengths}

    def _integer(self, schema: dict[str, Any], ptr: str) -> Any:
        if "multipleOf" in schema:
            return self._multiples(schema, ptr)
        lo, hi, last = None, None, None
        for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            if key not in schema:
                continue
            value, last = schema[key], key
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConstraintError(f"{key} must be a number", pointer=pointer(ptr, key))
            if key in ("minimum", "exclusiveMinimum"):
                bound = math.ceil(value) if key == "minimum" else math.floor(value) + 1
                lo = bound if lo is None else max(lo, bound)
            else:
                bound = math.floor(value) if key == "maximum" else math.ceil(value) - 1
                hi = bound if hi is None else min(hi, bound)
        if last is None:
            return {"type": "integer"}
        if lo is not None and hi is not None and lo > hi:
            return self.never(pointer(ptr, last))
        return self.placeholder(regex_for_int_range(lo, hi))



__all__ = ["DEFAULT_MAX_REF_DEPTH", "PLACEHOLDER", "WHITESPACE", "SchemaCompiler",
           "outlines_regex"]
