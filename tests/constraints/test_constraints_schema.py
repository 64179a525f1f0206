"""JSON schemas to canonical regexes: every text a schema regex accepts is a valid instance,
and everything outside the subset is an error with its JSON pointer."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from constraints.schema_cases import PERSON, SCHEMAS, texts_matching
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from outlines_core.json_schema import build_regex_from_schema

from sglc.constraints import ConstraintError, RegexSyntaxError, regex_for_schema


@pytest.mark.parametrize("whitespace", ["compact", "flexible"])
@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(s)[:40] for s in SCHEMAS])
@settings(max_examples=12, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_schema_regex_texts_are_valid_instances(schema, whitespace: str, data) -> None:
    text = data.draw(texts_matching(regex_for_schema(schema, whitespace)))
    jsonschema.validate(json.loads(text), schema)  # format: an annotation, as by default


def test_outlines_core_nested_empty_schema_regex_lacks_parentheses() -> None:
    schema = {"type": "object", "properties": {"a": {}}, "required": ["a"]}
    raw = build_regex_from_schema(json.dumps(schema), whitespace_pattern="")
    assert re.fullmatch(raw, "null")  # the alternation escapes the object
    ours = regex_for_schema(schema)
    assert not re.fullmatch(ours, "null") and re.fullmatch(ours, '{"a":[1,{"b":null}]}')


def test_whitespace_policies() -> None:
    compact, flexible = regex_for_schema(PERSON), regex_for_schema(PERSON, "flexible")
    assert re.fullmatch(compact, '{"name":"A","age":1}')
    assert re.fullmatch(flexible, '{"name":"A","age":1}')
    assert re.fullmatch(flexible, '{ "name" : "A" , "age" : 1 }')
    assert not re.fullmatch(compact, '{ "name":"A","age":1}')
    assert regex_for_schema(json.dumps(PERSON)) == compact
    with pytest.raises(ConstraintError, match="whitespace"):
        regex_for_schema(PERSON, "pretty")


def test_schema_keeps_todays_regexes_for_plain_schemas() -> None:
    for schema in SCHEMAS[:3] + [{"type": "array", "items": {"type": "integer"}}, {}]:
        raw = build_regex_from_schema(json.dumps(schema), whitespace_pattern="")
        assert regex_for_schema(schema) == raw


def _object(prop: object, **extra: object) -> dict:
    return {"type": "object", "properties": {"p": prop}, **extra}


@pytest.mark.parametrize("schema,pointer,message", [
    ({"type": "object", "patternProperties": {"\\p{digit}": {}}},
     "/patternProperties/\\p{digit}", "Unicode property 'digit'"),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, "/oneOf", "tell them apart"),
    ({"not": {"minimum": 3}}, "/not", "names its types"),
    ({"allOf": [{"pattern": "a"}, {"pattern": "b"}]}, "", "two different 'pattern'"),
    ({"type": "object", "dependentRequired": {"a": ["b"]}, "propertyNames": {"maxLength": 2}},
     "/propertyNames", "properties listed"),
    ({"type": "object", "minProperties": 1}, "/minProperties", "properties listed"),
    (_object({"type": "integer", "not": {"minimum": 2}}), "/properties/p/not", "names its types"),
    ({"type": "object", "properties": {"age": {"type": "number", "minimum": 0}}},
     "/properties/age/minimum", "type number"),
    ({"type": "integer", "minimum": 5, "maximum": 4}, "/maximum", "accepts no value"),
    ({"type": "integer", "minimum": True}, "/minimum", "must be a number"),
    ({"$defs": {"N": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}},
                      "required": ["n"]}}, "$ref": "#/$defs/N"}, "/$defs/N/properties/n/$ref",
     "accepts no value"),
    ({"$ref": "#"}, "/$ref", "accepts no value"),
    ({"allOf": [{"$ref": "#"}]}, "/allOf/0/$ref", "recursive"),
    ({"$ref": "#/$defs/Missing"}, "/$ref", "missing"),
    ({"$ref": "other.json#/x"}, "/$ref", "local"),
    ({"$defs": {"A": {"$id": "a", "items": {"$ref": "#"}}}, "$ref": "#/$defs/A"}, "/$defs/A/$id",
     "without $ref inside"),
    ({"anyOf": []}, "/anyOf", "non-empty"),
    ({"enum": []}, "/enum", "non-empty"),
    ({"type": "string", "enum": ["a", 1]}, "/enum/1", "does not have type"),
    ({"type": "foo"}, "/type", "unsupported type"),
    ({"type": "integer", "minLength": 1}, "/minLength", "does not apply"),
    (_object(False, required=["p"]), "/properties/p", "accepts no value"),
    ({"type": "object", "properties": {'q"uote': {"type": "null"}}}, '/properties/q"uote',
     "escaping"),
    ({"type": "object", "properties": {"a/b~c": {"type": "integer", "multipleOf": 3}}},
     "/properties/a~1b~0c/multipleOf", "not supported"),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 2}, "/maxItems",
     "below"),
    ({"type": "array", "items": [{"type": "integer"}]}, "/items", "items as a list"),
    ({"type": "array", "items": False, "minItems": 1}, "/items", "accepts no value"),
    ({"type": "array", "uniqueItems": True}, "/uniqueItems", "uniqueItems"),
    ({"type": "number", "multipleOf": 0.5}, "/multipleOf", "not supported for type number"),
    ({"type": "integer", "multipleOf": 3}, "/multipleOf", "2^a * 5^b"),
    ({"type": "integer", "multipleOf": 2, "minimum": 0}, "/multipleOf", "combined"),
    ({"type": "string", "minLength": 3, "maxLength": 1}, "/maxLength", "below"),
    ({"type": "string", "pattern": "[a-z]+", "maxLength": 3}, "/maxLength", "combined"),
    ({"type": "string", "pattern": "a", "format": "date"}, "/format", "combined"),
    ({"type": "string", "pattern": '^"+$'}, "/pattern", "need no escape in JSON"),
    ({"type": "string", "pattern": "\\a"}, "/pattern", "not an ECMAScript escape"),
    ({"type": "string", "pattern": "^a{,3}$"}, "/pattern", "not an ECMAScript quantifier"),
    ({"type": "string", "format": "hostname"}, "/format", "not supported"),
    ({"type": "string", "nullable": True}, "/nullable", "unsupported"),
    (False, "", "accepts no value"),
])
def test_unsupported_schemas_name_the_pointer(schema, pointer: str, message: str) -> None:
    with pytest.raises(ConstraintError, match=re.escape(message)) as info:
        regex_for_schema(schema)
    assert info.value.pointer == pointer


def test_schema_pattern_errors_carry_pointer_and_position() -> None:
    schema = _object({"type": "string", "pattern": "ab(?=c)"})
    with pytest.raises(ConstraintError, match="lookaround") as info:
        regex_for_schema(schema)
    assert (info.value.pointer, info.value.position) == ("/properties/p/pattern", 2)
    assert "at /properties/p/pattern, position 2" in str(info.value)
    with pytest.raises(RegexSyntaxError) as info:  # Python's own error keeps its kind
        regex_for_schema(_object({"type": "string", "pattern": "a(b"}))
    assert (info.value.pointer, info.value.position) == ("/properties/p/pattern", 1)


def test_invalid_schema_json_text() -> None:
    with pytest.raises(ConstraintError, match="not JSON") as info:
        regex_for_schema("{nope")
    assert info.value.pointer == ""
