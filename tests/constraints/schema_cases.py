"""JSON schemas in the supported subset, shared by the leaf's schema tests and the engine-side
automaton tests (tests/runtime/constrained/test_constrained_regex.py)."""

from __future__ import annotations

import string
from functools import cache

from hypothesis import strategies as st

# Beyond printable ASCII: characters where Python's and Rust's \d \w \s tables disagree, or
# that are multi-byte in UTF-8.
ALPHABET = string.printable + "é世界🙂\u0660\x1c²\u0301ß"

PERSON = {"type": "object", "title": "Person", "description": "someone",
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
SCHEMAS = [
    PERSON,
    {"type": "object", "properties": {"name": {"type": "string"},
                                      "city": {"enum": ["Paris", "Rome"]}},
     "required": ["name", "city"], "additionalProperties": False},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}}},
    {"type": "object", "properties": {"a": {"type": "null"}, "b": {"type": "number"}},
     "required": ["b"]},
    {"type": "object", "properties": {"inner": PERSON, "tags": {"type": "array",
                                                                "items": {"type": "string"}}},
     "required": ["inner"]},
    {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
    {"type": "array", "items": {"type": "boolean"}, "maxItems": 0},
    {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2}},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
    {"enum": ["a\"b", "back\\slash", "é 世界", 1, 2.5, None, True, {"x": [1]}]},
    {"const": "line\nbreak\ttab\u0001"},
    {"const": {"k": "v", "n": [1, 2]}},
    {"type": "string", "minLength": 2, "maxLength": 4},
    {"type": "string", "pattern": "^[a-z]{2,3}-[0-9]+$"},
    {"type": "string", "pattern": "ab|cd"},
    {"type": "string", "format": "date"},
    {"type": "string", "format": "uuid"},
    {"type": "integer", "minimum": -3, "maximum": 120},
    {"type": "integer", "exclusiveMinimum": 9.5},
    {"type": "integer", "maximum": -10},
    {"type": "number"},
    {"anyOf": [{"type": "integer"}, {"type": "null"}]},
    {"anyOf": [PERSON, {"type": "array", "items": {"type": "string"}}]},
    {"type": ["string", "null"], "maxLength": 2},
    {"type": ["integer", "boolean"], "minimum": 5},
    {"$defs": {"Pt": {"type": "object", "properties": {"x": {"type": "integer"},
                                                       "y": {"type": "integer"}},
                      "required": ["x", "y"]}},
     "type": "object", "properties": {"from": {"$ref": "#/$defs/Pt"},
                                      "to": {"$ref": "#/$defs/Pt"}},
     "required": ["from", "to"]},
    {"type": "object", "properties": {"data": {}}, "required": ["data"]},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"type": "object", "additionalProperties": False},
    {"type": "array", "items": {}},
    {},
    # beyond outlines-core's own forms (placeholders of sglc's regexes)
    {"type": "string", "pattern": "^\\d{2}-\\w+$"},
    {"type": "string", "format": "ipv4"},
    {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "maxLength": 3}]},
    {"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "boolean"},
     "maxItems": 3},
    {"type": "object", "propertyNames": {"pattern": "^[a-c]+$"}, "maxProperties": 2,
     "additionalProperties": {"type": "integer"}},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
               {"properties": {"b": {"const": 1}}}]},
]


@cache
def texts_matching(regex: str) -> st.SearchStrategy[str]:
    """Hypothesis texts that fullmatch `regex`, over ALPHABET (one strategy per regex)."""
    return st.from_regex(regex, fullmatch=True, alphabet=ALPHABET)
