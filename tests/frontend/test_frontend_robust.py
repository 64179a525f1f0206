"""Robustness: token soups and mutations of valid programs give diagnostics, never an
exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sglc.frontend import Diagnostic, check_program, render_all

PROGRAMS = [p.read_text() for p in sorted((Path(__file__).parent / "programs").glob("*.sgl"))]

TOKENS = [
    "fn", "main", "(", ")", ":", "\n", "    ", "let", "x", "=", "1", "2.5", '"s"', '"{x}"',
    '"""d"""', "gen", "select", "in", "[", "]", "{", "}", ",", "fork", "as", "parallel",
    "for", "if", "elif", "else", "while", "return", "break", "user", "assistant", "system",
    "schema", "extern", "import", "->", "int", "str", "|", "/a+/", "+", "*", "**", "==",
    "not", "and", "requires", "ensures", "assert", "result", "#c", ".", "\t", "'", '"', "\\",
    "r\"x\"", "max_tokens", "None", "True", "-", "//", "{{", "}}", "$", "@",
]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def assert_only_diagnostics(source: str) -> None:
    program, diags = check_program(source, filename="fuzz.sgl")
    assert all(isinstance(d, Diagnostic) for d in diags)
    render_all(diags, program.sources)  # rendering never fails either


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_token_soup(source: str) -> None:
    assert_only_diagnostics(source)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_token_soup_glued(source: str) -> None:
    assert_only_diagnostics(source)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(PROGRAMS))
    for _ in range(draw(st.integers(1, 4))):
        unit_lines = draw(st.booleans())
        units = text.splitlines(keepends=True) if unit_lines else list(text)
        if not units:
            break
        i = draw(st.integers(0, len(units) - 1))
        j = draw(st.integers(0, len(units) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if op == "delete":
            del units[i]
        elif op == "duplicate":
            units.insert(i, units[i])
        elif op == "swap":
            units[i], units[j] = units[j], units[i]
        else:
            units.insert(i, draw(st.sampled_from(TOKENS)))
        text = "".join(units)
    return text


@SETTINGS
@given(mutated())
def test_mutated_programs(source: str) -> None:
    assert_only_diagnostics(source)


@SETTINGS
@given(st.text(max_size=80))
def test_arbitrary_text(source: str) -> None:
    assert_only_diagnostics(source)
