"""The constraint language: the regex dialect, one canonical regex per constraint (types,
choices, regex literals, JSON schemas) and `ConstraintError`. A leaf: the checker, the IR pass
and the engine import it; it imports nothing else of sglc, and no torch.

    check_pattern(p)        the one dialect validator: None, or ConstraintError(position, hint)
    to_regex(Constraint)    the one constraint -> canonical regex entry point
    index_form(regex)       the form the engine's outlines-core Index is built from

Modules, each importing only those above it:
    errors         ConstraintError (position in a regex, JSON pointer in a schema, hint)
    charsets       Python's regex parser; the characters a parse tree matches, as intervals
    rust           a parse tree re-emitted in Rust regex syntax, meaning what Python means
    regex          the dialect: `check_pattern`, `used_chars`
    literals       escaped literals, choices, integer ranges
    ecmascript     JSON Schema patterns (ECMAScript, searched) as dialect regexes
    schema_formats calendar-exact date/time, email, uuid, ip, uri regexes
    schema_merge   allOf: the conjunction of two schemas
    schema_common  pointers, outlines-core's regex, what the rules share
    schema_containers / schema_literals  objects and arrays; enum/const and oneOf checks
    schema_subset  a JSON schema checked against the subset and normalised for outlines-core
    schema         `regex_for_schema`, and the subset it accepts
    index          `index_form`: the Index form of a canonical regex
    canonical      `Constraint`, `to_regex`, `request_regex`, the scalar regexes
    grammar        context-free constraints (Lark text, checked by llguidance): `lark_grammar`,
                   `route_schema` (a schema's regex or grammar path), `request_constraint`
"""

from sglc.constraints.canonical import (
    BOOL_REGEX,
    FLOAT_REGEX,
    INT_REGEX,
    Constraint,
    ConstraintKind,
    Whitespace,
    request_regex,
    to_regex,
)
from sglc.constraints.errors import ConstraintError, RegexSyntaxError
from sglc.constraints.index import IndexForm, index_form, index_regex
from sglc.constraints.literals import escape_literal, regex_for_choices, regex_for_int_range
from sglc.constraints.regex import check_pattern, used_chars
from sglc.constraints.schema import regex_for_schema

__all__ = [
    "BOOL_REGEX", "FLOAT_REGEX", "INT_REGEX", "Constraint", "ConstraintError", "ConstraintKind",
    "IndexForm", "RegexSyntaxError", "Whitespace", "check_pattern", "escape_literal",
    "index_form", "index_regex", "regex_for_choices", "regex_for_int_range", "regex_for_schema",
    "request_regex", "to_regex", "used_chars",
]
