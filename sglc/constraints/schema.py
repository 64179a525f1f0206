"""JSON schemas to canonical regexes (`regex_for_schema`): the schema is checked against
the supported subset and normalised (`schema_subset.py`, `schema_containers.py`,
`schema_literals.py`, `schema_merge.py`), outlines-core makes the regex of what it can say,
sglc's own regexes (placeholders) the rest.

The one promise: every text the regex accepts is JSON valid against the schema (checked
against the official JSON-Schema-Test-Suite, tests/constraints/test_constraints_schema_suite.py).
Where a keyword cannot be said exactly, the regex says a subset (e.g. properties come in schema
order; optional properties a dependency cannot satisfy are left out), never more. Anything
else is a `ConstraintError` with the JSON pointer of the offending keyword.

    any schema      annotations (title description default examples $comment $schema
                    deprecated readOnly writeOnly $defs definitions $anchor; contentMediaType
                    contentEncoding contentSchema, which 2020-12 makes annotations; $id at
                    the root only);
                    true and {} (any JSON value); false (no value: an optional property,
                    an anyOf branch, items are then left out; at the root an error)
    $ref            local JSON pointers or $anchor names, inlined; beside other keywords,
                    merged like allOf;
                    a recursive one expanded `max_ref_depth` times (default 3), the innermost
                    allowing no value (so recursion ends where it is optional)
    allOf           merged into one schema (schema_merge.py: types intersected, bounds
                    tightened, properties and items combined with each side's closing
                    keywords); two different patterns, formats, contains... are an error
    anyOf oneOf     branches (keywords beside them distributed in); oneOf as each branch
                    and not the others (see not), leaving out a branch that cannot be said
                    so (none left: an error)
    not             around a schema whose instances' types its type / enum / const / anyOf
                    say: the other types; not not X is X
    if then else    anyOf(if and then, not-if and else), keeping the cases this subset says
    enum / const    any JSON values; beside other keywords, those values the rest accepts
    type            a name or a list (anyOf, one branch per type); without a type, the types
                    whose keywords appear (none: any JSON)
    string          minLength maxLength; or pattern (ECMAScript, searched: ecmascript.py);
                    \\p{L}-style general categories; or format date time date-time email uuid
                    ipv4 ipv6 uri (schema_formats.py);
                    lengths do not combine with pattern/format
    integer         minimum maximum exclusiveMinimum exclusiveMaximum (exact decimal ranges);
                    or multipleOf an integer 2^a * 5^b (seen in the last digits)
    number          no bounds (a float range has no compact exact regex)
    object          properties required additionalProperties patternProperties propertyNames
                    minProperties maxProperties dependentRequired dependentSchemas
                    unevaluatedProperties (schema_containers.py says how)
    array           items prefixItems minItems maxItems contains minContains maxContains
                    unevaluatedItems; uniqueItems only with maxItems <= 1

Rejected: other multipleOf, $dynamicRef $dynamicAnchor, references outside the document, $id below
the root with a $ref inside, `not` of a schema that does not name its types, oneOf whose
branches do not, and any unknown keyword.

Whitespace between JSON tokens: "compact" (none, the default) or "flexible" (`[ ]?`, one
optional space, outlines-core's default).
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
    return _schema_regex(schema, whitespace, max_ref_depth)[0]


def recursion_cut(schema: str, whitespace: str = "compact") -> str | None:
    """The JSON pointer of the first recursive $ref whose expansion the regex of `schema`
    (JSON text) bounds at the default depth, or None when the regex is not bounded so."""
    return _schema_regex(schema, whitespace, DEFAULT_MAX_REF_DEPTH)[1]


@lru_cache(maxsize=256)
def _schema_regex(text: str, whitespace: str, max_ref_depth: int) -> tuple[str, str | None]:
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConstraintError(f"the schema is not JSON: {exc}", pointer="") from None
    compiler = SchemaCompiler(schema, whitespace, max_ref_depth)
    try:
        node = compiler.node(schema, "")
    except RecursionError:
        raise ConstraintError("the schema nests too deeply to compile", pointer="",
                              hint="flatten it, or lower max_ref_depth") from None
    if node is None:
        if compiler.never_reason is not None:
            raise ConstraintError(compiler.never_reason, pointer=compiler.never_pointer or "",
                                  hint="describe the allowed values instead")
        raise ConstraintError("the schema accepts no value", pointer=compiler.never_pointer or "")
    regex = compiler.regex(node)
    try:
        check_pattern(regex)
    except ConstraintError as exc:  # pragma: no cover - outlines-core produced a bad regex
        raise ConstraintError(f"internal: the schema's regex is unusable: {exc}",
                              pointer="") from None
    _JSON_REGEXES.add(regex)
    return regex, compiler.first_cut


__all__ = ["is_json_regex", "regex_for_schema"]
