"""What the schema subset compiles beyond outlines-core's: ECMAScript patterns, calendar-exact
formats, allOf / oneOf / if / not, recursive $ref to a bounded depth, contains,
patternProperties, property counts and dependencies; each checked against `jsonschema`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
import re
import uuid

import jsonschema
import pytest
from schema_suite import sample_texts

from sglc.constraints import ConstraintError, regex_for_schema
from sglc.constraints.ecmascript import string_pattern_regex
from sglc.constraints.literals import regex_for_multiples
from sglc.constraints.schema_formats import FORMAT_REGEXES

CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


def _sound(schema: object, samples: int = 30) -> str:
    regex = regex_for_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=CHECKER)
    for text in sample_texts(regex, samples, random.Random(0)):
        assert validator.is_valid(json.loads(text)), text
    return regex


@pytest.mark.parametrize("pattern,text,found", [
    ("^\\d$", "\u0660", False), ("^\\d$", "7", True), ("^\\w$", "\u00e9", False),
    ("^\\W$", "\u00e9", True), ("^abc$", "abc\n", False), ("^.$", "\u2028", False),
    ("a+", "xxaayy", True), ("^a+", "xa", False), ("^\\s$", "\ufeff", True),
    ("^(?<y>[0-9]{2})$", "12", True), ("^\\u{1F600}$", "\U0001F600", True),
    ("^\\p{L}+$", "\u00e9t\u00e9", True), ("^\\p{L}$", "1", False), ("^\\P{L}$", "1", True),
])
def test_patterns_follow_ecmascript(pattern: str, text: str, found: bool) -> None:
    assert (re.fullmatch(string_pattern_regex(pattern), text) is not None) == found


def test_dates_are_calendar_exact() -> None:
    regex = re.compile(FORMAT_REGEXES["date"])
    for year in [*range(1896, 1905), *range(1996, 2005), 2100, 2400, 1, 4, 400, 9999]:
        for month in range(1, 14):
            for d in range(0, 33):
                text = f"{year:04d}-{month:02d}-{d:02d}"
                try:
                    dt.date(year, month, d)
                    valid = True
                except ValueError:
                    valid = False
                assert (regex.fullmatch(text) is not None) == valid, text
    assert not regex.fullmatch("0000-01-01") and not regex.fullmatch("0000-02-29")


def test_formats_accept_only_valid_values() -> None:
    rng = random.Random(1)
    for name, check in [("ipv4", ipaddress.IPv4Address), ("ipv6", ipaddress.IPv6Address),
                        ("uuid", uuid.UUID), ("date-time", dt.datetime.fromisoformat)]:
        for text in sample_texts(FORMAT_REGEXES[name], 200, rng):
            check(text)
    assert not re.fullmatch(FORMAT_REGEXES["ipv4"], "01.2.3.4")
    assert not re.fullmatch(FORMAT_REGEXES["time"], "22:59:60Z")
    assert re.fullmatch(FORMAT_REGEXES["email"], "joe.bloggs@example.com")
    assert not re.fullmatch(FORMAT_REGEXES["email"], "joe.@example.com")


@pytest.mark.parametrize("divisor", [1, 2, 4, 5, 8, 10, 20, 25, 40, 125, 1000])
def test_multiples_are_exact(divisor: int) -> None:
    regex = re.compile(regex_for_multiples(divisor))
    for n in range(-3000, 3001):
        assert (regex.fullmatch(str(n)) is not None) == (n % divisor == 0), n
    assert regex_for_multiples(3) is None and not regex.fullmatch("-0")


def test_all_of_merges_objects_and_keeps_cross_terms() -> None:
    regex = _sound({"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"],
                               "additionalProperties": False},
                              {"properties": {"b": {"type": "string"}}, "required": ["a"]}]})
    assert re.fullmatch(regex, '{"a":1}') and not re.fullmatch(regex, '{"a":1,"b":"x"}')


def test_any_of_one_of_not_and_conditionals() -> None:
    regex = _sound({"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]})
    assert re.fullmatch(regex, '"ab"') and re.fullmatch(regex, "-3")
    regex = _sound({"not": {"type": ["string", "integer"]}})
    assert not re.fullmatch(regex, '"a"') and re.fullmatch(regex, "null")
    _sound({"if": {"type": "integer"}, "then": {"minimum": 3}, "else": {"type": "string"}})
    # a string is valid against the first branch too (it constrains objects only)
    regex = _sound({"oneOf": [{"properties": {"a": {"type": "integer"}}}, {"type": "string"}]})
    assert not re.fullmatch(regex, '"s"') and re.fullmatch(regex, '{"a":1}')


def test_recursive_refs_expand_to_the_configured_depth() -> None:
    tree = {"type": "object", "properties": {"v": {"type": "integer"}, "kids": {
        "type": "array", "items": {"$ref": "#"}}}, "required": ["v"]}
    shallow = regex_for_schema(tree, max_ref_depth=1)
    assert re.fullmatch(shallow, '{"v":1,"kids":[{"v":2}]}')
    assert not re.fullmatch(shallow, '{"v":1,"kids":[{"v":2,"kids":[{"v":3,"kids":[]}]}]}')
    deep = regex_for_schema(tree, max_ref_depth=3)
    assert re.fullmatch(deep, '{"v":1,"kids":[{"v":2,"kids":[{"v":3,"kids":[]}]}]}')
    with pytest.raises(ConstraintError, match="max_ref_depth"):
        regex_for_schema(tree, max_ref_depth=-1)


@pytest.mark.parametrize("schema", [
    {"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "string"},
     "minItems": 2, "maxItems": 4},
    {"type": "array", "contains": {"type": "integer", "minimum": 5}, "minContains": 2},
    {"type": "object", "patternProperties": {"^x": {"type": "integer"}},
     "additionalProperties": {"type": "integer", "maximum": 3}},
    {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "minProperties": 2,
     "maxProperties": 2},
    {"type": "object", "properties": {"a": {}, "b": {}}, "dependentRequired": {"a": ["b"]}},
    {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
     "propertyNames": {"pattern": "^a"}},
    {"enum": [{"x": [1, {"$ref": "#"}]}, [None], "s"]},
    {"const": 2, "minimum": 1},
    {"not": {"const": 1}},
    {"not": {"not": {"type": "string", "maxLength": 2}}},
    {"$ref": "#n", "$defs": {"N": {"$anchor": "n", "type": "integer"}}},
    {"type": "array", "contains": {"type": "integer"}, "maxContains": 2},
    {"type": "object", "propertyNames": {"maxLength": 2}, "maxProperties": 2},
    {"type": "object", "dependentRequired": {"bar": ["foo"]}},
    {"dependentSchemas": {"bar": {"required": ["foo"]}}, "additionalProperties": {"type": "null"}},
    {"allOf": [{"properties": {"foo": True}, "unevaluatedProperties": False}],
     "anyOf": [{"properties": {"bar": True}}]},
])
def test_wider_keywords_compile_soundly(schema: dict) -> None:
    regex = _sound(schema)  # every sampled text is valid under jsonschema
    assert sample_texts(regex, 1, random.Random(0)), "the regex accepts no text at all"
