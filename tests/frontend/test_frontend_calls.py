"""Calls of builtins and methods, typed from the sglc.lang records: Python's calling
convention, result types that follow from argument types, and the errors."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import sglc
from sglc.frontend import check_program
from sglc.lang.types import BOOL, INT, STR, Json, ListT, OptionalT, Type


def errors(body: str) -> list[tuple[str, str | None]]:
    source = "fn main():\n" + textwrap.indent(textwrap.dedent(body), "    ")
    _, diags = check_program(source, "t.sgl")
    return [(d.message, d.hint) for d in diags if d.is_error]


def type_of(expr: str, setup: str = "") -> Type:
    source = f"fn main():\n    {setup}\n    let v = {expr}\n    print(v)\n"
    program, diags = check_program(source, "t.sgl")
    assert not [d for d in diags if d.is_error], [d.message for d in diags]
    let = program.main.fns["main"].node.body[-2]
    return program.types[let.value]


@pytest.mark.parametrize(("expr", "setup", "want"), [
    ('list("abc")', "", ListT(STR)),
    ("list([1, 2])", "", ListT(INT)),
    ('list({"a": 1})', "", ListT(STR)),
    ("sorted([2, 1])", "", ListT(INT)),
    ("min([2, 1])", "", INT),
    ("abs(-2)", "", INT),
    ("len(x)", "let x: json = 1", INT),
    ("list(x)", "let x: json = 1", Json()),
    ("xs.pop()", "let xs = [1, 2]", INT),
    ('d.get("a")', 'let d = {"a": 1}', OptionalT(INT)),
    ('d.get("a", 0)', 'let d = {"a": 1}', INT),
    ('d.keys()', 'let d = {"a": 1}', ListT(STR)),
    ('d.values()', 'let d = {"a": True}', ListT(BOOL)),
    ('"a b".split()', "", ListT(STR)),
])
def test_result_types_follow_from_argument_types(expr: str, setup: str, want: Type) -> None:
    assert type_of(expr, setup) == want


def test_builtins_and_methods_take_their_arguments_by_position() -> None:
    assert errors('print(len(value=[1]), "a,b".split(sep=","))') == [
        ("len() takes no keyword arguments", "pass the arguments by position"),
        ("split() takes no keyword arguments", "pass the arguments by position"),
    ]
    assert errors("print(len([1], [2]))") == [
        ("len() takes 1 positional argument but 2 were given", None)]
    assert errors("print(range())") == [("range() is missing argument 'start'", None)]


def test_print_takes_any_values_and_keyword_only_sep_and_end() -> None:
    assert errors('print(1, [2], "x", sep=", ", end="")') == []
    assert errors("print(1, sepp=2)") == [
        ("print() has no parameter 'sepp'", "did you mean 'sep'?")]
    assert errors("print(1, sep=2)") == [
        ("argument 'sep' of print() must be str, not int",
         'convert with str(...), or interpolate: "{x}"')]


def test_argument_types_and_rule_errors() -> None:
    assert errors("print(len(3), abs(\"a\"), sum([\"a\"]), min(3))") == [
        ("len() of int", None), ("abs() of str", None), ("sum() needs a list, not list[str]", None),
        ("min() needs a list, not int", None)]
    assert errors('let xs = [1]\nxs.append("a")') == [
        ("argument 'item' of append() must be int, not str",
         "convert with int(...), or generate it typed: gen x: int")]
    assert errors('let d = {"a": 1}\nprint(d.get(1))') == [
        ("argument 'key' of get() must be str, not int", 'convert with str(...), or interpolate: "{x}"')]


def test_matches_needs_a_regex_literal_or_constant() -> None:
    # issue 23: a top-level regex constant is accepted too (see the hint)
    assert errors('let r = /a/\nprint(matches("a", r))') == [
        ("matches() needs a regex literal /.../ as its pattern",
         "write the pattern inline, e.g. /[0-9]+/, or make it a top-level constant: "
         "let R = /.../")]


def test_unknown_method_lists_or_suggests() -> None:
    assert errors('print("a".uper())') == [("str has no method 'uper'", "did you mean 'upper'?")]
    assert errors("print([1].zz())") == [
        ("list[int] has no method 'zz'", "methods: append, pop, extend, index, count")]


def test_method_keywords_on_a_json_value_are_a_compile_error() -> None:
    with pytest.raises(sglc.CompileError, match="methods take their arguments by position"):
        sglc.compile('fn main():\n    let j: json = " a "\n    print(j.strip(chars=" "))\n',
                     "t.sgl")


def test_calls_module_does_not_import_the_expression_typer() -> None:
    calls = Path(sglc.__file__).parent / "frontend" / "calls.py"
    imported = {n.module for n in ast.walk(ast.parse(calls.read_text()))
                if isinstance(n, ast.ImportFrom)}
    assert "sglc.frontend.exprs" not in imported
