"""Parameter and result types: structured data, built in lowering, printed, saved and loaded."""

from __future__ import annotations

import json

import pytest

from sglc.ir import IRFormatError, IRType, print_program, program_from_json, program_to_json
from sglc.ir.serialize import type_from_json, type_to_json

SOURCE = '''schema P:
    name: str

extern fn tool(q: str | None) -> "yes" | "no"

fn f(a: str, b: int, c: float, d: bool, e: list[int], g: dict, h: dict[str, list[P]],
     i: "x" | "y", j: int | None, k: P, m: json, n: list[str] = ["z"]) -> list[str]:
    return [a]
'''

INT, STR = IRType("int"), IRType("str")
P = IRType("schema", name="P")
EXPECTED = {
    "a": (STR, "str"),
    "b": (INT, "int"),
    "c": (IRType("float"), "float"),
    "d": (IRType("bool"), "bool"),
    "e": (IRType("list", (INT,)), "list[int]"),
    "g": (IRType("dict", (STR, IRType("json"))), "dict"),
    "h": (IRType("dict", (STR, IRType("list", (P,)))), "dict[str, list[P]]"),
    "i": (IRType("choice", choices=("x", "y")), '"x" | "y"'),
    "j": (IRType("optional", (INT,)), "int | None"),
    "k": (P, "P"),
    "m": (IRType("json"), "json"),
    "n": (IRType("list", (STR,)), "list[str]"),
}


def test_lowering_builds_structured_types(lower) -> None:
    prog = lower(SOURCE)
    fn = prog.functions["t.f"]
    assert {p.name: (p.type, str(p.type)) for p in fn.params} == EXPECTED
    assert fn.returns == IRType("list", (STR,))
    sig = prog.externs["t.tool"]
    assert sig.params[0].type == IRType("optional", (STR,))
    assert sig.returns == IRType("choice", choices=("yes", "no"))
    assert prog.functions["t.f"].params[-1].default == ["z"]


def test_a_fn_without_result_returns_none_and_branch_bodies_take_any(lower) -> None:
    prog = lower('fn g(xs: list[str]):\n    let ys = parallel for x in xs:\n        x + "!"\n')
    assert prog.functions["t.g"].returns == IRType("None")
    body = next(fn for name, fn in prog.functions.items() if "$map" in name)
    assert {p.type for p in body.params} == {IRType("any")} and body.returns == IRType("any")


def test_printer_prints_each_type(lower) -> None:
    text = print_program(lower(SOURCE))
    assert ('fn t.f(a: str, b: int, c: float, d: bool, e: list[int], g: dict, '
            'h: dict[str, list[P]], i: "x" | "y", j: int | None, k: P, m: json, '
            'n: list[str] = ["z"]) -> list[str]') in text
    assert 'extern t.tool(q: str | None) -> "yes" | "no"' in text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_type_round_trips_through_json(name: str) -> None:
    t, _ = EXPECTED[name]
    assert type_from_json(json.loads(json.dumps(type_to_json(t)))) == t


def test_json_form_leaves_empty_fields_out() -> None:
    assert type_to_json(INT) == {"kind": "int"}
    assert type_to_json(IRType("list", (P,))) == {
        "kind": "list", "args": [{"kind": "schema", "name": "P"}]}
    assert type_to_json(IRType("choice", choices=("a",))) == {"kind": "choice", "choices": ["a"]}


def test_program_types_round_trip(lower) -> None:
    prog = lower(SOURCE)
    back = program_from_json(json.loads(json.dumps(program_to_json(prog))))
    assert back == prog and back.functions["t.f"].params[7].type.choices == ("x", "y")


def test_a_program_saved_with_types_as_text_is_refused_clearly(lower) -> None:
    data = program_to_json(lower(SOURCE))
    old = {**data, "version": 1}
    old["functions"] = {name: {**fn, "returns": "list[str]"} for name, fn in data["functions"].items()}
    with pytest.raises(IRFormatError, match="saved in IR format version 1.*compile the program"):
        program_from_json(old)
    with pytest.raises(IRFormatError, match="malformed"):  # the current version, a text type
        program_from_json({**old, "version": data["version"]})


@pytest.mark.parametrize("bad", [
    dict(kind="number"),
    dict(kind="list"),
    dict(kind="int", args=(INT,)),
    dict(kind="choice"),
    dict(kind="str", choices=("a",)),
    dict(kind="schema"),
])
def test_malformed_types_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        IRType(**bad)
