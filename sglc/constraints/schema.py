"""JSON schemas to canonical regexes (`regex_for_schema`): the schema is checked against
the supported subset and normalised (`schema_subset.py`), outlines-core makes the regex.

JSON schema subset (`regex_for_schema`; anything else is a `ConstraintError` with the JSON
pointer of the offending keyword, checked before outlines-core sees the schema):

    any schema      title description default examples $comment $schema $id deprecated readOnly
                    writeOnly (ignored); $defs / definitions; true and {} (any JSON value: at the
                    root outlines-core's regex; nested, the same in a group -- outlines-core
                    leaves it bare, so the alternation escapes the object -- except as array items
                    or map values, left to outlines-core's shallower generic values, whose
                    automata build much faster); false is an error
    $ref            local JSON pointers ("#", "#/$defs/Name", "#/properties/a", ...), inlined;
                    no sibling keywords but annotations; a cycle is an error at the closing $ref
    type            a name or a list of names (a list becomes anyOf, one branch per type)
    enum / const    non-empty enum; only annotations and a `type` (which every value must have)
                    beside them; a string value of a non-string type is an error
    anyOf           non-empty; only annotations beside it; with an any-JSON branch, any JSON
    string          minLength maxLength, or pattern (regex.py's dialect; matched against the raw
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
from functools import lru_cache
from typing import Any

from sglc.constraints.errors import ConstraintError
from sglc.constraints.regex import check_pattern
from sglc.constraints.schema_subset import DEFAULT_MAX_REF_DEPTH, WHITESPACE, SchemaCompiler

_JSON_REGEXES: set[str] = set()  # regexes from regex_for_schema: their texts are JSON values


def is_json_regex(pattern: str) -> bool:
    """Whether `pattern` came from `regex_for_schema` (every text it accepts is JSON)."""
    for whitespace in WHITESPACE:  # the any-JSON regexes are always known
        regex_for_schema({}, whitespace)
    return pattern in _JSON_REGEXES


def regex_for_schema(schema: dict[str, Any] | bool | str, whitespace: str = "compact",
                     max_ref_depth: int = DEFAULT_MAX_REF_DEPTH) -> str:
    """The canonical regex of a JSON schema (a dict, or its JSON text; property order matters)
    in the supported subset: every text it accepts is JSON valid against the schema.
    `whitespace` between JSON tokens: "compact" (none) or "flexible" (one optional space).
    A recursive $ref is expanded at most `max_ref_depth` times inside itself."""
    if whitespace not in WHITESPACE:
        raise ConstraintError(f"unknown whitespace policy {whitespace!r}",
                              hint="compact or flexible")
    if isinstance(max_ref_depth, bool) or not isinstance(max_ref_depth, int) or max_ref_depth < 0:
        raise ConstraintError(f"max_ref_depth must be a non-negative integer, not "
                              f"{max_ref_depth!r}")
    if not isinstance(schema, str):
        schema = json.dumps(schema)
    return _schema_regex(schema, whitespace, max_ref_depth)


@lru_cache(maxsize=256)
def _schema_regex(text: str, whitespace: str, max_ref_depth: int) -> str:
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConstraintError(f"the schema is not JSON: {exc}", pointer="") from None
    compiler = SchemaCompiler(schema, whitespace, max_ref_depth)
    node = compiler.node(schema, "")
    if node is None:
        raise ConstraintError("the schema accepts no value", pointer=compiler.never_pointer or "")
    regex = compiler.regex(node)
    try:
        check_pattern(regex)
    except ConstraintError as exc:  # pragma: no cover - outlines-core produced a bad regex
        raise ConstraintError(f"internal: the schema's regex is unusable: {exc}",
                              pointer="") from None
    _JSON_REGEXES.add(regex)
    return regex


__all__ = ["is_json_regex", "regex_for_schema"]
