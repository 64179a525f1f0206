"""`-a key=value` and `--args-json`, parsed by walking each parameter's IRType."""

from __future__ import annotations

import json
import re

import pytest
from model_fixtures import make_model_dir

from sglc.cli import main
from sglc.cli.common import UsageError
from sglc.cli.program_args import check_json_value, parse_value
from sglc.ir import IRType

INT, STR = IRType("int"), IRType("str")
P = IRType("schema", name="P")


def t_list(t: IRType) -> IRType:
    return IRType("list", (t,))


def t_dict(value: IRType) -> IRType:
    return IRType("dict", (STR, value))


def t_optional(t: IRType) -> IRType:
    return IRType("optional", (t,))


CHOICE = IRType("choice", choices=("fast", "slow"))


@pytest.mark.parametrize("t, text, value", [
    (STR, "hello world", "hello world"),
    (IRType("any"), "[1", "[1"),
    (INT, "-3", -3),
    (IRType("float"), "2.5", 2.5),
    (IRType("bool"), "yes", True),
    (IRType("bool"), "False", False),
    (IRType("None"), "null", None),
    (CHOICE, "slow", "slow"),
    (t_optional(INT), "None", None),
    (t_optional(INT), "7", 7),
    (t_optional(CHOICE), "fast", "fast"),
    (t_list(INT), "[1, 2]", [1, 2]),
    (t_list(t_list(STR)), '[["a"], []]', [["a"], []]),
    (t_list(CHOICE), '["fast"]', ["fast"]),
    (t_dict(IRType("json")), '{"a": [1, "x"]}', {"a": [1, "x"]}),
    (t_dict(INT), '{"a": 1}', {"a": 1}),
    (P, '{"name": "Ann"}', {"name": "Ann"}),
    (IRType("json"), '"text"', "text"),
    (t_list(t_optional(IRType("float"))), "[1, null, 2.5]", [1, None, 2.5]),
])
def test_each_kind_parses(t: IRType, text: str, value: object) -> None:
    assert parse_value("k", text, t) == value


@pytest.mark.parametrize("t, text, message", [
    (INT, "x", "argument 'k' must be an int, got 'x'"),
    (IRType("float"), "one", "must be a float"),
    (IRType("bool"), "maybe", "must be true or false"),
    (IRType("None"), "0", "must be None"),
    (CHOICE, "medium", "must be one of 'fast', 'slow', got 'medium'"),
    (t_optional(INT), "x", "must be an int"),
    (t_list(INT), "1, 2", "must be a list[int] written as JSON"),
    # issue 23: one wording with the executor's argument check ("an int", not "a int")
    (t_list(INT), '["1"]', 'item 0 must be an int, got str "1"'),
    (t_list(CHOICE), '["medium"]', 'item 0 must be one of "fast", "slow", got str "medium"'),
    (t_dict(INT), '{"a": "1"}', "key 'a' must be an int, got str \"1\""),
    (t_dict(IRType("json")), "[1]", "must be a dict, got list [1]"),
    (P, "[]", "must be a P object, got list []"),
    (P, "{oops", "must be a P object written as JSON"),
    (IRType("json"), "text", "must be written as JSON (a string in quotes), got 'text'"),
    (IRType("str", max=3), "abcd", "must have at most 3 characters, got 4"),
    (IRType("int", min=0), "-1", "must be >= 0, got -1"),
])
def test_bad_values_are_usage_errors(t: IRType, text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_value("k", text, t)
    assert message in str(info.value)


@pytest.mark.parametrize("t, value, ok", [
    (INT, 1, True), (INT, True, False), (INT, 1.5, False),
    (IRType("float"), 1, True), (IRType("float"), False, False),
    (STR, "a", True), (STR, 1, False),
    (IRType("bool"), True, True), (IRType("bool"), 1, False),
    (CHOICE, "fast", True), (CHOICE, "x", False), (CHOICE, ["fast"], False),
    (t_optional(STR), None, True), (t_optional(STR), 1, False),
    (t_list(STR), ["a"], True), (t_list(STR), ["a", 1], False), (t_list(STR), "a", False),
    (P, {}, True), (P, [], False),
    (IRType("json"), [1, {"a": None}], True),
])
def test_json_arguments_are_checked_by_shape(t: IRType, value: object, ok: bool) -> None:
    if ok:
        check_json_value("k", value, t)
    else:
        with pytest.raises(UsageError, match=re.escape("argument 'k' ") + ".*must be "):
            check_json_value("k", value, t)


def test_schema_arguments_are_checked_field_by_field() -> None:
    schemas = {"P": {"type": "object", "properties": {"name": {"type": "string"}},
                     "required": ["name"], "additionalProperties": False}}
    check_json_value("k", {"name": "Ann"}, P, schemas)
    for value, message in [({}, "P is missing the field 'name'"),
                           ({"name": 3}, "P.name must be a JSON string, got int"),
                           ({"name": "a", "x": 1}, "P has no field 'x'")]:
        with pytest.raises(UsageError, match=re.escape(f"argument 'k' {message}")):
            check_json_value("k", value, P, schemas)


PROGRAM = '''
schema P:
    name: str

fn show(a: int, b: float, c: bool, d: "x" | "y", e: list[int], f: dict[str, int], g: P,
        h: int | None = None, j: json = 1) -> str:
    return str([a, b, c, d, e, f, g.name, h, j])
'''


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-args-model")
    make_model_dir(path, "llama")
    return path


def test_every_kind_through_the_cli(tmp_path, model_dir, capsys) -> None:
    prog = tmp_path / "show.sgl"
    prog.write_text(PROGRAM)
    code = main(["run", str(prog), "--fn", "show", "-a", "a=3", "-a", "b=0.5", "-a", "c=true",
                 "-a", "d=y", "-a", "e=[1,2]", "-a", 'f={"k": 4}', "-a", 'g={"name": "Ann"}',
                 "--args-json", '{"h": null, "j": {"deep": [1]}}',
                 "--model", str(model_dir), "--max-total-tokens", "1024"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out == "[3, 0.5, True, 'y', [1, 2], {'k': 4}, 'Ann', None, {'deep': [1]}]\n"
    code = main(["run", str(prog), "--fn", "show", "--args-json",
                 json.dumps({"a": 1, "b": 1, "c": True, "d": "z", "e": [], "f": {}, "g": {}})])
    assert code == 2 and 'argument \'d\' must be one of "x", "y", got str "z"' in \
        capsys.readouterr().err
