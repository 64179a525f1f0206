"""The constraint compiler: the regex dialect, the Index form's parity with `re.fullmatch`
(walking a real outlines-core `Index` over a character-level vocabulary, as the engine does),
the outlines-core 0.2.14 pitfalls it guards against, and the JSON schema subset."""

from __future__ import annotations

import json
import re
import string
import time
import warnings
from functools import cache

import jsonschema
import outlines_core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from outlines_core.json_schema import build_regex_from_schema

from sglc.constraints.canonical import (
    canonical_regex,
    regex_for_choices,
    regex_for_int_range,
    regex_for_type,
)
from sglc.constraints.regex import ConstraintError, check_regex, index_form, index_regex
from sglc.constraints.schema import regex_for_schema
from sglc.ir.values import BOOL_REGEX, FLOAT_REGEX, INT_REGEX

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # [[:alpha:]] reads as [[:alph]]

# A character-level vocabulary: every character one token. Beyond printable ASCII it holds
# characters where Python's and Rust's \d \w \s tables disagree or that are multi-byte.
ALPHABET = string.printable + "é世界🙂\u0660\x1c²\u0301ß"
EOS = 10_000
TOKEN = {ch: i for i, ch in enumerate(ALPHABET)}
VOCAB = outlines_core.Vocabulary(EOS, {ch: [i] for ch, i in TOKEN.items()})
# derandomize: the generic-JSON regexes are thousands of characters, and on some random
# texts Python's backtracking `re` (the reference) runs for minutes; fixed examples keep CI's
# time fixed
FAST = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@cache
def _index(regex: str) -> outlines_core.Index:
    return outlines_core.Index(regex, VOCAB)


def _walk(index: outlines_core.Index, text: str) -> bool:
    state = index.get_initial_state()
    for ch in text:
        state = index.get_next_state(state, TOKEN[ch])
        if state is None:
            return False
    return index.is_final_state(state)


def automaton_accepts(pattern: str, text: str) -> bool:
    """What the engine's automaton for `pattern` accepts (empty text: the IndexForm flag)."""
    form = index_form(pattern)
    if text == "":
        return form.accepts_empty
    return form.regex is not None and _walk(_index(form.regex), text)


def fullmatch(pattern: str, text: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.fullmatch(pattern, text) is not None


# -- the pitfall, pinned ----------------------------------------------------------------------

def test_outlines_core_index_without_a_trailing_dollar_drops_continuations() -> None:
    """0.2.14: a prefix that is itself a match kills every continuation that is not one."""
    assert _walk(_index(r"[0-9]+(\.[0-9]+)?"), "1")
    assert not _walk(_index(r"[0-9]+(\.[0-9]+)?"), "1.5")
    assert not _walk(_index("(yes|yesterday)"), "yesterday")
    assert _walk(_index(r"(?:[0-9]+(\.[0-9]+)?)$"), "1.5")
    assert _walk(_index("(?:yes|yesterday)$"), "yesterday")
    # an empty alternative matches at once and kills everything else, with or without $
    assert not _walk(_index("(?:(?:yes|yesterday)$|)"), "yes")


@pytest.mark.parametrize("regex", ["^(yes|yesterday)", "^a$", "a*$", "(?:|a)$", r"\Aabc"])
def test_outlines_core_index_has_no_start_state_for_anchors_or_nullable_dollar(regex) -> None:
    with pytest.raises(ValueError, match="universal start state"):
        outlines_core.Index(regex, VOCAB)


def test_outlines_core_nested_empty_schema_regex_lacks_parentheses() -> None:
    schema = {"type": "object", "properties": {"a": {}}, "required": ["a"]}
    raw = build_regex_from_schema(json.dumps(schema), whitespace_pattern="")
    assert fullmatch(raw, "null")  # the alternation escapes the object
    ours = regex_for_schema(schema)
    assert not fullmatch(ours, "null") and fullmatch(ours, '{"a":[1,{"b":null}]}')


def test_the_index_form_of_pitfall_regexes() -> None:
    assert index_regex(r"[0-9]+(\.[0-9]+)?").endswith(")$")
    for pattern, text in [(r"[0-9]+(\.[0-9]+)?", "1.5"), ("(yes|yesterday)", "yesterday"),
                          ("^(yes|yesterday)$", "yesterday"), ("a*", "aaa")]:
        assert automaton_accepts(pattern, text), (pattern, text)
    assert index_form("a*").accepts_empty and not index_form("a+").accepts_empty
    assert index_form("") == index_form("a{0}") and index_form("").regex is None
    with pytest.raises(ConstraintError, match="only the empty text"):
        index_regex("(?:)")


def test_multi_character_tokens_walk_the_index_form() -> None:
    tokens = {"yes": [0], "ter": [1], "day": [2], "1": [4], ".": [5], "5": [6],
              "1.": [7]}
    index = outlines_core.Index(index_regex("(yes|yesterday)|[0-9]+(\\.[0-9]+)?"),
                                outlines_core.Vocabulary(99, tokens))
    for ids, ok in [([0], True), ([0, 1, 2], True), ([0, 1], False), ([7, 6], True),
                    ([4, 5, 6], True), ([7], False)]:
        state = index.get_initial_state()
        for token_id in ids:
            state = index.get_next_state(state, token_id)
        assert (state is not None and index.is_final_state(state)) == ok, ids


def test_any_json_index_builds_quickly() -> None:
    """With one $ after the whole any-JSON regex, regex-automata needs over 30 s."""
    start = time.perf_counter()
    regex = index_form(regex_for_schema({})).regex
    assert regex is not None and not regex.endswith(")$")
    assert _walk(_index(regex), '{"a":[1,{"b":null}],"c":-2.5e+3}')
    assert time.perf_counter() - start < 10


# -- parity: the automaton accepts exactly what re.fullmatch accepts ----------------------------

PARITY = [
    r"[0-9]+(\.[0-9]+)?", "(yes|yesterday)", "^(yes|yesterday)$", "a*", INT_REGEX, FLOAT_REGEX,
    BOOL_REGEX, r"\d{2,4}-\w+", r"[A-Za-z_][A-Za-z0-9_]*", "(?:ab|cd)*e?", ".{0,3}",
    r"[^a-c\n]+", "a{2}b{1,}c{0,2}", "(?P<name>foo|bar)baz", r"\s*,\s*",
    r"[\w\-\.]+@[a-z]+\.(com|org)", r'"([^"\\]|\\.)*"', "(a|)b?", "", r"[\]\[^-]+",
    r"\t\n\\\x41\u00e9", r"(0|[1-9][0-9]*)(,[0-9]{3})*", "(ab?)+c", "[[:alpha:]]+",
    r"a\141", "x{,2}y", "(?#a comment)a|b", r"[^\W\d_]+", "é+|世界|🙂", "a|b|c|ab|abc",
    "((a|b)c?)*d", r"\S+\s\S+", r"(?:\+|-)?\d+", "x+?y*?", r"[^\s\S]|z", "(a|b){0}c?",
]


def _mutations(text: str) -> st.SearchStrategy[str]:
    chars = st.sampled_from(ALPHABET)
    position = st.integers(0, len(text))
    return st.one_of(
        st.builds(lambda i, c: text[:i] + c + text[i:], position, chars),
        st.builds(lambda i: text[:i] + text[i + 1:], position),
        st.builds(lambda i, c: text[:i] + c + text[i + 1:], position, chars),
        st.builds(lambda i: text[:i], position),
        st.builds(lambda s: text + s, st.text(ALPHABET, max_size=3)),
    )


@pytest.mark.parametrize("pattern", PARITY)
@FAST
@given(data=st.data())
def test_index_form_accepts_exactly_what_fullmatch_accepts(pattern: str, data) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        strategy = st.from_regex(pattern, fullmatch=True, alphabet=ALPHABET)
    good = data.draw(st.one_of(strategy, st.just("")))
    texts = [good, data.draw(_mutations(good)), data.draw(st.text(ALPHABET, max_size=6))]
    for text in texts:
        assert automaton_accepts(pattern, text) == fullmatch(pattern, text), (pattern, text)


@pytest.mark.parametrize("pattern,text", [(r"\w", "²"), (r"\w", "\u0301"), (r"\s", "\x1c"),
                                          (r"\d", "\u0660"), (r"\d", "²"), (".", "\n"),
                                          ("[[:alpha:]]+", "a]"), ("[[:alpha:]]+", ":]")])
def test_python_meaning_wins_where_rust_disagrees(pattern: str, text: str) -> None:
    assert automaton_accepts(pattern, text) == fullmatch(pattern, text)


# -- the dialect's errors ---------------------------------------------------------------------

@pytest.mark.parametrize("pattern,position,message", [
    ("ab(?=c)", 2, "lookaround"), ("a(?!b)", 1, "lookaround"), ("(?<=a)b", 0, "lookaround"),
    ("x(?<!a)b", 1, "lookaround"), (r"(a)\1", 3, "backreference"),
    ("(?P<x>a)(?P=x)", 8, "backreference"), ("a^b", 1, "anchor ^"), ("a$b", 1, "anchor $"),
    ("(a$)", 2, "anchor $"), (r"\bfoo", 0, r"anchor \b"), (r"fo\Z", 2, r"anchor \Z"),
    (r"\Afoo", 0, r"anchor \A"), ("(?i)abc", 0, "inline flags"), ("a(?s:.)", 1, "inline flags"),
    ("a*+", 2, "possessive"), ("a{2,3}+", 6, "possessive"), ("(?>ab)", 0, "atomic"),
    ("(a)?(?(1)b|c)", 4, "conditional"), (r"[^\s\S]", 0, "matches no text"),
    (r"x[^\d\D]y", 1, "matches no text"), ("a{0}b{2,1}", 6, "min repeat greater"),
    ("a(b", 1, "missing )"), ("[a-", 0, "unterminated character set"),
    ("*a", 0, "nothing to repeat"), (r"a\q", 1, "bad escape"),
])
def test_unsupported_regexes_name_the_position(pattern: str, position: int, message: str) -> None:
    with pytest.raises(ConstraintError, match=re.escape(message)) as info:
        check_regex(pattern)
    assert info.value.position == position and info.value.pointer is None
    assert f"position {position}" in str(info.value)


@pytest.mark.parametrize("pattern", ["x+?", "a??", "a{1,2}?", r"\$", r"\\$", "^a$", "[$^]",
                                     r"\(\?=", r"[(?=]", r"\0", r"\101"])
def test_supported_lookalikes_pass(pattern: str) -> None:
    check_regex(pattern)


# -- types, choices, integer ranges -----------------------------------------------------------

def test_scalar_choice_and_str_regexes() -> None:
    assert regex_for_type("int") == INT_REGEX and canonical_regex("bool") == BOOL_REGEX
    assert regex_for_type("str") is None and canonical_regex("str", max_len=4) == r"[\s\S]{0,4}"
    assert regex_for_choices(["a.b", "(x)|y"]) == r"(a\.b|\(x\)\|y)"
    assert canonical_regex("regex", pattern="^[0-9]{2}$") == "^[0-9]{2}$"
    assert canonical_regex("json") == regex_for_schema({})
    with pytest.raises(ConstraintError, match="non-empty"):
        regex_for_choices([])
    with pytest.raises(ConstraintError, match="unknown constraint type"):
        regex_for_type("date")
    with pytest.raises(ConstraintError, match="length bound"):
        regex_for_type("int", max_len=3)
    with pytest.raises(ConstraintError) as info:
        canonical_regex("regex", pattern="a(?=b)")
    assert info.value.position == 1


@settings(max_examples=150, deadline=None, database=None)
@given(lo=st.one_of(st.none(), st.integers(-1200, 1200)),
       hi=st.one_of(st.none(), st.integers(-1200, 1200)), n=st.integers(-2500, 2500))
def test_integer_ranges_are_exact(lo: int | None, hi: int | None, n: int) -> None:
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    regex = regex_for_int_range(lo, hi)
    inside = (lo is None or lo <= n) and (hi is None or n <= hi)
    assert fullmatch(regex, str(n)) == inside, (lo, hi, n, regex)
    for text in ["-0", "01", "+1", "", "-"]:
        assert not fullmatch(regex, text), (regex, text)


# -- JSON schemas -----------------------------------------------------------------------------

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
]


@cache
def _schema_strategy(regex: str) -> st.SearchStrategy[str]:
    return st.from_regex(regex, fullmatch=True, alphabet=ALPHABET)


@pytest.mark.parametrize("whitespace", ["compact", "flexible"])
@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(s)[:40] for s in SCHEMAS])
@settings(max_examples=12, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_schema_regex_texts_are_valid_instances(schema, whitespace: str, data) -> None:
    regex = regex_for_schema(schema, whitespace)
    text = data.draw(_schema_strategy(regex))
    jsonschema.validate(json.loads(text), schema)  # format: an annotation, as by default
    # the generic-JSON regexes (thousands of characters: `{}` anywhere in the schema) are
    # tested apart; on their mutations Python's backtracking `re` can take minutes
    if len(regex) < 2000:
        assert automaton_accepts(regex, text), text
        mutated = data.draw(_mutations(text))
        assert automaton_accepts(regex, mutated) == fullmatch(regex, mutated), mutated


@FAST
@given(text=st.from_regex(regex_for_schema({}), fullmatch=True, alphabet=ALPHABET))
def test_any_json_automaton_matches_fullmatch(text: str) -> None:
    regex = regex_for_schema({})
    json.loads(text)
    assert automaton_accepts(regex, text)
    for mutated in (text[:-1], text + "0", text + " ", "[" + text + "]", text.replace(":", "")):
        assert automaton_accepts(regex, mutated) == fullmatch(regex, mutated), mutated


def test_whitespace_policies() -> None:
    compact, flexible = regex_for_schema(PERSON), regex_for_schema(PERSON, "flexible")
    assert fullmatch(compact, '{"name":"A","age":1}') and fullmatch(flexible, '{"name":"A","age":1}')
    assert fullmatch(flexible, '{ "name" : "A" , "age" : 1 }')
    assert not fullmatch(compact, '{ "name":"A","age":1}')
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
    ({"type": "object", "patternProperties": {"^x": {}}}, "/patternProperties", "unsupported"),
    ({"allOf": [{"type": "integer"}]}, "/allOf", "unsupported"),
    ({"oneOf": [{"type": "integer"}]}, "/oneOf", "unsupported"),
    ({"not": {"type": "integer"}}, "/not", "unsupported"),
    ({"if": {}, "then": {}, "else": {}}, "/if", "unsupported"),
    (_object({"dependentSchemas": {}}), "/properties/p/dependentSchemas", "unsupported"),
    (_object({"type": "integer", "multipleOf": 2}), "/properties/p/multipleOf", "unsupported"),
    ({"type": "object", "properties": {"age": {"type": "number", "minimum": 0}}},
     "/properties/age/minimum", "type number"),
    ({"type": "integer", "minimum": 5, "maximum": 4}, "/maximum", "no integer"),
    ({"type": "integer", "minimum": True}, "/minimum", "must be a number"),
    ({"$defs": {"N": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}}},
      "$ref": "#/$defs/N"}, "/$defs/N/properties/n/$ref", "recursive"),
    ({"$ref": "#"}, "/$ref", "recursive"),
    (_object({"$ref": "#"}), "/properties/p/$ref", "recursive"),
    ({"$ref": "#/$defs/Missing"}, "/$ref", "missing"),
    ({"$ref": "other.json#/x"}, "/$ref", "local"),
    ({"$defs": {"A": {"type": "integer"}}, "$ref": "#/$defs/A", "minimum": 1}, "/minimum",
     "cannot be combined"),
    ({"anyOf": []}, "/anyOf", "non-empty"),
    ({"anyOf": [{"type": "integer"}], "type": "string"}, "/type", "cannot be combined"),
    ({"enum": []}, "/enum", "non-empty"),
    ({"type": "string", "enum": ["a", 1]}, "/enum/1", "does not have type"),
    ({"enum": ["a"], "const": "a"}, "/const", "cannot be combined"),
    ({"type": "foo"}, "/type", "unsupported type"),
    ({"type": "integer", "minLength": 1}, "/minLength", "does not apply"),
    ({"minLength": 1, "minItems": 1}, "", "several types"),
    (_object(False), "/properties/p", "false"),
    ({"type": "object", "properties": {'q"uote': {"type": "null"}}}, '/properties/q"uote',
     "escaping"),
    ({"type": "object", "properties": {"a/b~c": {"type": "integer", "multipleOf": 3}}},
     "/properties/a~1b~0c/multipleOf", "unsupported"),
    ({"type": "object", "properties": {"a": {}}, "required": ["a", "zz"]}, "/required/1",
     "not listed"),
    ({"type": "object", "required": ["a"]}, "/required/0", "not listed"),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 2}, "/maxItems",
     "below"),
    ({"type": "array", "items": [{"type": "integer"}]}, "/items", "items as a list"),
    ({"type": "array", "items": False}, "/items", "only []"),
    ({"type": "array", "uniqueItems": True}, "/uniqueItems", "uniqueItems"),
    ({"type": "array", "prefixItems": [{}], "minItems": 2}, "/minItems", "prefixItems"),
    ({"type": "string", "minLength": 3, "maxLength": 1}, "/maxLength", "below"),
    ({"type": "string", "pattern": "[a-z]+", "maxLength": 3}, "/maxLength", "combined"),
    ({"type": "string", "pattern": "a", "format": "date"}, "/format", "combined"),
    ({"type": "string", "pattern": ".+"}, "/pattern", "JSON string must escape"),
    ({"type": "string", "pattern": '[^"]+'}, "/pattern", "JSON string must escape"),
    ({"type": "string", "format": "time"}, "/format", "not supported"),
    ({"type": "string", "format": "email"}, "/format", "not supported"),
    ({"type": "string", "nullable": True}, "/nullable", "unsupported"),
    (False, "", "false"),
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


def test_invalid_schema_json_text() -> None:
    with pytest.raises(ConstraintError, match="not JSON") as info:
        regex_for_schema("{nope")
    assert info.value.pointer == ""
