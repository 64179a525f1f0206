"""The constructs of issue 23 as the checker types them: `with` defaults, gen samples,
state builtins, select parameters, fork handles, bounds, json[T], schema references and
schema values, module constants (regex constants as constraints), the docstring rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sglc.frontend import ast as A
from sglc.frontend import check_program, parse_source
from sglc.lang.types import Bounds, ListT, SchemaT


def checked(source: str, filename: str = "t.sgl"):
    program, diags = check_program(source, filename)
    errors = [d for d in diags if d.is_error]
    assert not errors, [f"{d.span}: {d.message}" for d in errors]
    return program, diags


def type_of_let(program, fn: str, name: str) -> str:
    """The static type of the value of `let name = ...` in fn."""
    node = _find(program.main.fns[fn].node.body, name)
    return str(program.types[node.value])


def _find(stmts, name):
    for s in stmts:
        if isinstance(s, A.Let) and s.name == name:
            return s
        for inner in (getattr(s, "body", ()), getattr(s, "orelse", ())):
            found = _find(inner, name) if isinstance(inner, tuple) else None
            if found is not None:
                return found
    return None


def test_fn_defaults_parse_and_check() -> None:
    module, diags = parse_source("fn f(q: str) -> str with temperature=0.7, max_tokens=64:\n"
                                 "    \"Q: {q}\" gen a\n    return a\n")
    assert diags == []
    (fn,) = module.fns
    assert [(k.name, k.value.value) for k in fn.defaults] == [("temperature", 0.7),
                                                             ("max_tokens", 64)]
    checked("fn f(q: str) -> str with temperature=0.7, stop=[\"\\n\"]:\n"
            "    \"Q: {q}\" gen a\n    return a\n")


def test_with_is_reserved_and_join_is_not() -> None:
    _, diags = check_program("fn f():\n    let with = 1\n", "t.sgl")
    assert [d.code for d in diags if d.is_error] == ["keyword-as-name"]
    program, _ = checked('fn f() -> str:\n    let join = ", ".join(["a", "b"])\n    return join\n')
    assert type_of_let(program, "f", "join") == "str"


def test_gen_samples_are_lists_and_meta_follows() -> None:
    program, _ = checked('''
fn f() -> json:
    "Q: " gen a: int(n=3)
    let m = meta(a)
    " R: " gen b
    let mb = meta(b)
    select c in ["x", "y"]
    let mc = meta(c)
    let first = m[0].finish_reason
    return [a, mb.logprobs, mc.scores, first]
''')
    assert str(program.main.fns["f"].returns) == "json"
    assert type_of_let(program, "f", "m") == "list[GenMeta]"
    assert type_of_let(program, "f", "mb") == "GenMeta"
    assert type_of_let(program, "f", "mc") == "SelectMeta"
    assert type_of_let(program, "f", "first") == '"stop" | "length" | "abort"'


def test_state_builtins_and_json_namespace() -> None:
    program, _ = checked('''
fn f() -> str:
    user "hi"
    let ms = messages()
    let role = ms[0].role
    let t = text()
    let v = json.loads("[1]")
    let s = json.dumps({"a": 1})
    return t + s + role
''')
    assert type_of_let(program, "f", "ms") == "list[Message]"
    assert type_of_let(program, "f", "role") == '"system" | "user" | "assistant"'
    assert (type_of_let(program, "f", "v"), type_of_let(program, "f", "s")) == ("json", "str")
    _, diags = check_program("fn f():\n    print(json.load(\"1\"))\n", "t.sgl")
    assert [(d.message, d.hint) for d in diags] == [
        ("json has no function 'load'", "did you mean 'loads'?")]


def test_select_parameters() -> None:
    checked('fn f() -> str:\n    "Pick: "\n    select a(temperature=0.5, seed=1, '
            'choices_method="greedy_token_selection") in ["x", "y"]\n    return a\n')


def test_fork_handles_index_inside_text_after() -> None:
    program, _ = checked('''
fn f() -> json:
    "Q: "
    fork 3 as b join append:
        let i = b.index
        " [{i}]" gen x(max_tokens=2)
    let texts = b.text
    let idx = b.i
    return [texts, idx, b.x]
''')
    assert type_of_let(program, "f", "texts") == "list[str]"
    assert type_of_let(program, "f", "idx") == "list[int]"
    fork = program.main.fns["f"].node.body[1]
    assert isinstance(fork, A.Fork) and fork.join == "append"


def test_bounds_and_json_form() -> None:
    program, _ = checked('''
schema Item:
    name: str[min=1, max=20]
    tags: list[str, max=3]
    size: int[min=0, max=9]

fn f(xs: list[int, min=1]) -> str:
    "Q: " gen a: str[max=5]
    " R: " gen b: json[str]
    " S: " gen c: Item
    return a + b + c.name
''')
    item = program.main.schemas["Item"]
    assert str(item.fields["name"]) == "str[min=1, max=20]"
    assert item.fields["tags"] == ListT(SchemaT(item).info.fields["tags"].elem)
    assert item.fields["tags"].bounds == Bounds(None, 3)
    assert str(program.main.fns["f"].params[0].type) == "list[int, min=1]"


def test_schema_reference_from_a_file_and_a_literal(tmp_path: Path) -> None:
    (tmp_path / "person.json").write_text(json.dumps(
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}))
    source = tmp_path / "p.sgl"
    source.write_text('fn f() -> json:\n    "P: " gen p: schema("person.json")\n'
                      '    " Q: " gen q: schema({"type": "integer", "minimum": 1})\n'
                      '    return [p, q]\n')
    program, diags = check_program(source)
    assert diags == []
    schemas = sorted(map(json.dumps, program.json_schemas.values()))
    assert schemas == sorted([json.dumps({"type": "integer", "minimum": 1}),
                              (tmp_path / "person.json").read_text()])


def test_schema_values_from_parts() -> None:
    program, _ = checked('''
schema Person:
    name: str
    age: int
    city: str | None

fn f(n: str) -> Person:
    let p = Person(name=n, age=3)
    return p
''')
    assert type_of_let(program, "f", "p") == "Person"


def test_module_constants_and_regex_constraints(tmp_path: Path) -> None:
    (tmp_path / "pats.sgl").write_text('"""Patterns."""\nlet CODE = /[A-Z]{2}[0-9]{2}/\n')
    source = tmp_path / "main.sgl"
    source.write_text('''import pats
import regexes

let SHOTS = """Q: 1+1?
A: 2
"""
let MOODS = ["happy", "sad"]
let INT = /[0-9]+/

fn f() -> str:
    SHOTS
    "Q: 2+2?\\nA: " gen n: INT
    " Code: " gen c: pats.CODE
    " Date: " gen d: regexes.DATE
    " Mood: " select m in MOODS
    assert matches(n, INT)
    return n + c + d + m
''')
    program, diags = check_program(source)
    assert diags == []
    consts = {c.name: c.value for c in program.constants.values()}
    assert consts["INT"] == "[0-9]+" and consts["CODE"] == "[A-Z]{2}[0-9]{2}"
    assert consts["MOODS"] == ["happy", "sad"] and consts["SHOTS"].startswith("Q: 1+1?")


@pytest.mark.parametrize("body, warned", [
    ('    """Shots."""\n    "Q: {q}" gen a\n', True),
    ('    """Shots."""\n    gen a\n', True),
    ('    """Shots."""\n    q\n    gen a\n', False),
    ('    """Answer it."""\n    user "{q}"\n    assistant: gen a\n', False),
    ('    """Answer it."""\n    requires len(q) > 0\n    let x = q\n    "{x}" gen a\n', False),
    ('    """Doc."""\n    """Shots."""\n    "Q: {q}" gen a\n', False),
])
def test_the_docstring_rule_is_said_where_it_could_surprise(body: str, warned: bool) -> None:
    _, diags = check_program(f"fn f(q: str) -> str:\n{body}    return a\n", "t.sgl")
    assert [d.code for d in diags] == (["docstring-not-sent"] if warned else [])


def test_a_builtin_hidden_by_a_variable_is_named() -> None:
    _, diags = check_program("fn f(text: str) -> str:\n    return text()\n", "t.sgl")
    assert [(d.message, d.hint) for d in diags] == [
        ("str is not callable",
         "'text' here is a variable, which hides the builtin text(); rename the variable")]


def test_a_docstring_is_never_sent_and_a_second_string_is() -> None:
    module, _ = parse_source('fn f() -> str:\n    """Doc."""\n    """Shots."""\n    gen a\n'
                             '    return a\n')
    fn = module.fns[0]
    assert fn.doc == "Doc." and isinstance(fn.body[0], A.ExprStmt)


def test_the_readme_language_example_checks_clean(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("## The language"):].split("```")[1].split("\n", 1)[1]
    (tmp_path / "tour.sgl").write_text(block)
    (tmp_path / "card.json").write_text('{"type": "object", "properties": {"a": '
                                        '{"type": "integer"}}, "required": ["a"]}')
    _, diags = check_program(tmp_path / "tour.sgl")
    assert diags == []
