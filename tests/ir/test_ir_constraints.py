"""Constraint compilation: each regex accepts exactly what the value type's parser reads."""

from __future__ import annotations

import json
import re

import pytest

from sglc.constraints import Constraint as LeafConstraint
from sglc.constraints import ConstraintError, escape_literal, regex_for_schema
from sglc.ir import Constraint, Gen, ParseError, parse_generated
from sglc.ir.passes import compile_constraints
from sglc.ir.passes.constraints import constraint_regex, leaf_constraint

SAMPLES = {
    "int": (["0", "7", "-12", "100"], ["", "01", "+1", "1.0", "1e3", " 1", "-", "--1", "1_0"]),
    "float": (["0", "1.5", "-0.25", "3e8", "2.5E-3", "10"],
              ["", ".5", "1.", "01.5", "1e", "nan", "inf", "1.5 ", "+1"]),
    "bool": (["true", "false"], ["True", "1", "", "truefalse", "yes"]),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_scalar_regexes_match_the_parser_exactly(kind: str) -> None:
    regex = constraint_regex(Constraint(kind), {})  # type: ignore[arg-type]
    good, bad = SAMPLES[kind]
    for text in good:
        assert re.fullmatch(regex, text), text
        parse_generated(kind, text)
    for text in bad:
        assert re.fullmatch(regex, text) is None, text
        with pytest.raises(ParseError):
            parse_generated(kind, text)
    assert parse_generated("int", "-12") == -12 and parse_generated("bool", "false") is False


def test_choice_regex_escapes_and_accepts_only_the_options() -> None:
    choices = ("a.b", "(x)|y", "plain text", "1+1")
    regex = constraint_regex(Constraint("choice", choices=choices), {})
    for c in choices:
        assert re.fullmatch(regex, c)
    for text in ["axb", "x", "(x)", "y", "11", "plain", ""]:
        assert re.fullmatch(regex, text) is None, text
    assert escape_literal("a*b") == r"a\*b"


def test_str_and_regex_constraints() -> None:
    assert constraint_regex(Constraint("str"), {}) is None
    bounded = constraint_regex(Constraint("str", max_len=3), {})
    assert re.fullmatch(bounded, "a\nb") and re.fullmatch(bounded, "abcd") is None
    assert constraint_regex(Constraint("regex", pattern="[0-9]{2}"), {}) == "[0-9]{2}"


def test_schema_regex_accepts_valid_compact_json_only() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"},
              "city": {"enum": ["Paris", "Rome"]}}, "required": ["name", "city"],
              "additionalProperties": False}
    regex = constraint_regex(Constraint("schema", schema="P"), {"P": schema})
    good = '{"name":"Ada","city":"Rome"}'
    assert re.fullmatch(regex, good) and json.loads(good)["city"] == "Rome"
    for bad in ['{"name":"Ada","city":"Oslo"}', '{"name":"Ada"}', '{"city":"Rome"}', "[]"]:
        assert re.fullmatch(regex, bad) is None, bad
    anything = constraint_regex(Constraint("json"), {})
    for text in ['{"a":[1,2.5,null]}', '"s"', "true", "-3", "null"]:
        assert re.fullmatch(anything, text), text
        json.loads(text)
    assert re.fullmatch(anything, "{'a': 1}") is None


def test_the_pass_sets_every_gen_regex(lower) -> None:
    prog = compile_constraints(lower(
        'schema P:\n    n: int\nfn f():\n    assistant:\n        gen a: int\n'
        '        gen b: "x" | "y"\n        gen c: P\n        gen d\n    print(a, b, c, d)\n'))
    gens = {i.dest: i for _, _, i in prog.functions["t.f"].instructions()
            if isinstance(i, Gen)}
    assert gens["a"].regex == r"-?(0|[1-9][0-9]*)" and gens["b"].regex == "(x|y)"
    assert re.fullmatch(gens["c"].regex, '{"n":-4}') and gens["d"].regex is None


def test_a_json_field_stays_inside_its_object() -> None:
    """outlines-core's regex for {} is a bare alternation; nested, it must be grouped."""
    schema = {"type": "object", "properties": {"data": {}}, "required": ["data"],
              "additionalProperties": False}
    regex = constraint_regex(Constraint("schema", schema="P"), {"P": schema})
    assert re.fullmatch(regex, '{"data":[1,"x",null]}')
    assert re.fullmatch(regex, "null") is None and re.fullmatch(regex, '{"data":true') is None


def test_constraint_errors_carry_positions() -> None:
    with pytest.raises(ConstraintError) as info:
        constraint_regex(Constraint("regex", pattern="ab(?=c)"), {})
    assert info.value.position == 2
    with pytest.raises(ConstraintError) as info:
        constraint_regex(Constraint("schema", schema="P"),
                         {"P": {"type": "object", "minProperties": 1}})
    assert info.value.pointer == "/minProperties"
    assert regex_for_schema('{"type": "integer"}') == "(-)?(0|[1-9][0-9]*)"


def test_the_pass_hands_the_leaf_a_self_contained_constraint() -> None:
    schema = {"type": "object", "properties": {"b": {"type": "integer"},
                                               "a": {"type": "string"}}}
    leaf = leaf_constraint(Constraint("schema", schema="P"), {"P": schema})
    assert leaf == LeafConstraint("schema", schema=json.dumps(schema))  # field order kept
    assert leaf_constraint(Constraint("choice", choices=("x",)), {}) == LeafConstraint(
        "choice", choices=("x",))
