"""Lowering the constructs of issue 23: fn defaults, constraints of bounded / json[T] /
schema-file / regex-constant gens, module constants, select params, fork join and index,
schema values, state builtins; the verifier's new rules and the JSON form."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sglc.ir import (
    BuildDict,
    BuildList,
    CallBuiltin,
    Constraint,
    Fork,
    Gen,
    IRType,
    IRVerifyError,
    Select,
    Var,
    program_from_json,
    program_to_json,
    verify,
)
from sglc.ir.passes import run_passes
from sglc.ir.value_types import describe, value_error

LANGUAGE = Path(__file__).parents[1] / "frontend" / "programs" / "language.sgl"


def instrs(fn):
    return [i for _, _, i in fn.instructions()]


def gens(fn) -> dict[str, Gen]:
    return {i.dest: i for i in instrs(fn) if isinstance(i, Gen)}


@pytest.fixture
def language(lower):
    return lower(LANGUAGE, str(LANGUAGE))


def test_fn_defaults_are_constants_of_the_function(language) -> None:
    assert language.functions["language.ask"].defaults == (("temperature", 0.3),
                                                           ("max_tokens", 16))
    assert language.functions["language.main"].defaults == (("max_tokens", 32),)
    assert language.functions["language.main$fork1"].defaults == ()


def test_constraints_of_the_new_forms(language) -> None:
    g = gens(language.functions["language.main"])
    assert g["quoted"].constraint == Constraint("schema", schema="json[str]")
    assert language.schemas["json[str]"] == {"type": "string"}
    assert g["quoted"].value_type == "json"
    assert g["short"].constraint == Constraint("str", max_len=8)
    assert g["d"].constraint.kind == "regex" and g["d"].constraint.pattern.startswith("[0-9]{4}")
    assert g["card"].constraint == Constraint("schema", schema="card.schema.json")
    assert language.schemas["card.schema.json"]["required"] == ["title", "stars"]
    person = language.schemas["Person"]["properties"]
    assert person["name"] == {"type": "string", "minLength": 1, "maxLength": 20}
    assert person["age"] == {"type": "integer", "minimum": 0, "maximum": 150}
    assert person["tags"]["maxItems"] == 3
    assert dict(g["many"].params)["n"].value == 2
    (a,) = gens(language.functions["language.ask"]).values()
    assert a.constraint == Constraint("regex", pattern="[0-9]+")


@pytest.mark.parametrize("written, constraint, value_type", [
    ("str[max=5]", Constraint("str", max_len=5), "str"),
    ("str[min=2, max=5]", Constraint("regex", pattern=r"[\s\S]{2,5}"), "str"),
    ("str[min=2]", Constraint("regex", pattern=r"[\s\S]{2,}"), "str"),
    ("int[min=1, max=3]", Constraint("schema", schema="int[min=1, max=3]"), "json"),
    ('json["a" | "b"]', Constraint("schema", schema='json["a" | "b"]'), "json"),
    ("list[int, max=2]", Constraint("schema", schema="list[int, max=2]"), "json"),
])
def test_bounded_and_json_form_constraints(lower, written, constraint, value_type) -> None:
    prog = lower(f"fn f() -> json:\n    \"x\" gen a: {written}\n    return a\n")
    (g,) = gens(prog.functions["t.f"]).values()
    assert (g.constraint, g.value_type) == (constraint, value_type)
    compiled, _ = run_passes(prog, verify=True)
    (g,) = gens(compiled.functions["t.f"]).values()
    assert g.regex is not None


def test_module_constants_are_inlined(language) -> None:
    main = instrs(language.functions["language.main"])
    (yesno,) = [i for i in main if isinstance(i, BuildList)
                and [c.value for c in i.items] == ["yes", "no"]]
    (select,) = [i for i in main if isinstance(i, Select)]
    assert select.options.name == yesno.dest
    ask = instrs(language.functions["language.ask"])
    assert ask[0].value.value == "Q: 1+1?\nA: 2\n"


def test_select_params_fork_join_and_index(language) -> None:
    main = language.functions["language.main"]
    (select,) = [i for i in instrs(main) if isinstance(i, Select)]
    assert [k for k, _ in select.params] == ["temperature", "seed", "choices_method"]
    (fork,) = [i for i in instrs(main) if isinstance(i, Fork)]
    body = language.functions[fork.body]
    assert fork.join == "append" and body.params[0].name == "b.index"
    assert any(getattr(i, "value", None) is not None and str(i.value) == "b.index"
               for i in instrs(body))


def test_schema_values_and_state_builtins(language) -> None:
    main = instrs(language.functions["language.main"])
    (built,) = [i for i in main if isinstance(i, BuildDict) and i.dest == "built"]
    assert [k.value for k in built.keys] == ["name", "age", "tags"]
    calls = [i for i in main if isinstance(i, CallBuiltin)]
    metas = [a.value for i in calls if i.name == "meta" for a in i.args]
    assert metas == ["short", "ok"]  # a binding argument is passed as the gen's name
    assert {"text", "messages", "json.dumps", "meta"} <= {i.name for i in calls}


def test_json_round_trip_keeps_defaults_spans_and_bounds(language) -> None:
    prog, _ = run_passes(language)
    back = program_from_json(json.loads(json.dumps(program_to_json(prog))))
    assert back == prog
    ask = back.functions["language.ask"]
    assert ask.defaults == (("temperature", 0.3), ("max_tokens", 16))
    assert str(ask.params[0].span) == f"{LANGUAGE}:16:8"


def test_verifier_rejects_bad_defaults_and_join_modes(language) -> None:
    verify(language)
    ask = language.functions["language.ask"]
    bad = language.replace_function(dataclasses.replace(ask, defaults=(("n", 2),)))
    with pytest.raises(IRVerifyError, match="'n' cannot be a default"):
        verify(bad)
    main = language.functions["language.main"]
    blocks = tuple(dataclasses.replace(b, instrs=tuple(
        dataclasses.replace(i, join="concat") if isinstance(i, Fork) else i for i in b.instrs))
        for b in main.blocks)
    with pytest.raises(IRVerifyError, match="unknown join mode 'concat'"):
        verify(language.replace_function(dataclasses.replace(main, blocks=blocks)))
    blocks = tuple(dataclasses.replace(b, instrs=tuple(
        dataclasses.replace(i, params=(("temprature", i.params[0][1]),))
        if isinstance(i, Select) else i for i in b.instrs)) for b in main.blocks)
    with pytest.raises(IRVerifyError, match="select has no parameter 'temprature'"):
        verify(language.replace_function(dataclasses.replace(main, blocks=blocks)))
    blocks = tuple(dataclasses.replace(b, instrs=tuple(
        dataclasses.replace(i, args=(Var("short"),))
        if isinstance(i, CallBuiltin) and i.name == "meta" else i for i in b.instrs))
        for b in main.blocks)
    with pytest.raises(IRVerifyError, match="'meta' takes the name of a gen or select"):
        verify(language.replace_function(dataclasses.replace(main, blocks=blocks)))


@pytest.mark.parametrize("value, t, problem", [
    ("3", IRType("int"), 'must be an int, got str "3"'),
    (True, IRType("int"), "must be an int, got bool true"),
    (3, IRType("float"), None),
    ("abcd", IRType("str", max=3), "must have at most 3 characters, got 4"),
    ([], IRType("list", (IRType("int"),), min=1), "must have at least 1 items, got 0"),
    (7, IRType("int", min=0, max=5), "must be <= 5, got 7"),
    (None, IRType("optional", (IRType("int"),)), None),
    ({"name": "x", "age": -1, "tags": []}, IRType("schema", name="Person"),
     "Person.age must be >= 0, got -1"),
    ({"name": "x", "age": 1, "tags": [1]}, IRType("schema", name="Person"),
     "Person.tags[0] must be a JSON string, got int"),
])
def test_values_against_types(language, value, t, problem) -> None:
    assert value_error(value, t, language.schemas) == problem


def test_types_in_words() -> None:
    assert [describe(t) for t in (IRType("int"), IRType("str"), IRType("schema", name="P"),
                                  IRType("list", (IRType("int"),)), IRType("str", max=4))] == [
        "an int", "a str", "a P object", "a list[int]", "a str[max=4]"]
