"""One canonical regex per constraint: `to_regex(Constraint)`, `request_regex` (the engine's
spelling), the scalar regexes, choices and integer ranges."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglc.constraints import (
    BOOL_REGEX,
    FLOAT_REGEX,
    INT_REGEX,
    Constraint,
    ConstraintError,
    regex_for_choices,
    regex_for_int_range,
    regex_for_schema,
    request_regex,
    to_regex,
)
from sglc.constraints.schema_subset import WHITESPACE

PERSON = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def test_scalar_choice_and_str_regexes() -> None:
    assert to_regex(Constraint("int")) == INT_REGEX and to_regex(Constraint("bool")) == BOOL_REGEX
    assert to_regex(Constraint("float")) == FLOAT_REGEX
    assert to_regex(Constraint("str")) is None
    assert to_regex(Constraint("str", max_len=4)) == r"[\s\S]{0,4}"
    assert to_regex(Constraint("choice", choices=("a.b", "(x)|y"))) == r"(a\.b|\(x\)\|y)"
    assert regex_for_choices(["a.b", "(x)|y"]) == r"(a\.b|\(x\)\|y)"
    assert to_regex(Constraint("regex", pattern="^[0-9]{2}$")) == "^[0-9]{2}$"  # as written
    assert to_regex(Constraint("json")) == regex_for_schema({})
    assert to_regex(Constraint("json", whitespace="flexible")) == regex_for_schema({}, "flexible")
    schema = json.dumps(PERSON)
    assert to_regex(Constraint("schema", schema=schema)) == regex_for_schema(PERSON)


@pytest.mark.parametrize("constraint,message", [
    (Constraint("choice"), "non-empty"),
    (Constraint("choice", choices=("a", 1)), "must be a string"),  # type: ignore[arg-type]
    (Constraint("date"), "unknown constraint kind"),  # type: ignore[arg-type]
    (Constraint("int", max_len=3), "length bound applies to str"),
    (Constraint("str", max_len=-1), "non-negative integer"),
    (Constraint("str", max_len=True), "non-negative integer"),
    (Constraint("regex"), "needs a pattern"),
    (Constraint("schema"), "needs a schema"),
    (Constraint("schema", schema="{nope"), "not JSON"),
    (Constraint("json", whitespace="pretty"), "whitespace"),  # type: ignore[arg-type]
])
def test_malformed_constraints(constraint: Constraint, message: str) -> None:
    with pytest.raises(ConstraintError, match=re.escape(message)):
        to_regex(constraint)


def test_regex_errors_keep_their_position() -> None:
    with pytest.raises(ConstraintError) as info:
        to_regex(Constraint("regex", pattern="a(?=b)"))
    assert info.value.position == 1 and info.value.hint


def test_a_constraint_is_a_frozen_hashable_value() -> None:
    c = Constraint("choice", choices=("a", "b"))
    assert c == Constraint("choice", choices=("a", "b")) and hash(c) == hash(dataclasses.replace(c))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.kind = "str"  # type: ignore[misc]
    assert set(WHITESPACE) == {"compact", "flexible"}


def test_request_regex_is_to_regex_of_the_field_set() -> None:
    assert request_regex(None, None, None) is None
    assert request_regex("[0-9]+", None, None) == to_regex(Constraint("regex", pattern="[0-9]+"))
    schema = json.dumps(PERSON)
    assert request_regex(None, schema, None) == to_regex(Constraint("schema", schema=schema))
    assert request_regex(None, None, ["x", "y"]) == "(x|y)"
    with pytest.raises(ConstraintError) as info:
        request_regex("ab(?=c)", None, None)
    assert info.value.position == 2
    with pytest.raises(ConstraintError) as info:
        request_regex(None, '{"type": "object", "multipleOf": 2}', None)
    assert info.value.pointer == "/multipleOf"


@settings(max_examples=150, deadline=None, database=None)
@given(lo=st.one_of(st.none(), st.integers(-1200, 1200)),
       hi=st.one_of(st.none(), st.integers(-1200, 1200)), n=st.integers(-2500, 2500))
def test_integer_ranges_are_exact(lo: int | None, hi: int | None, n: int) -> None:
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    regex = regex_for_int_range(lo, hi)
    inside = (lo is None or lo <= n) and (hi is None or n <= hi)
    assert (re.fullmatch(regex, str(n)) is not None) == inside, (lo, hi, n, regex)
    for text in ["-0", "01", "+1", "", "-"]:
        assert re.fullmatch(regex, text) is None, (regex, text)


def test_an_empty_integer_range_is_an_error() -> None:
    with pytest.raises(ConstraintError, match="no integer lies between 3 and 2"):
        regex_for_int_range(3, 2)
