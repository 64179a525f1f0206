"""Prompt-boundary healing never eats a stop (issue 22): the spaces healed off the prompt stay
the prompt's, so stop strings that equal or contain them match only after them; for free,
regex, typed and choice gens, on the default model. And min_tokens / stop_regex from SGL."""

from __future__ import annotations

import pytest

import sglc.program as api
from sglc.frontend import check_program
from sglc.runtime.executor import Trace

REACT = '''
fn think(stop: list[str]) -> str:
    system "You are a helpful assistant. Use the calculator tool for arithmetic."
    user "Question: What is 12*7?"
    assistant:
        "Thought: " gen t(stop=stop, max_tokens=48)
    return t
'''


@pytest.fixture(scope="module")
def runtime():
    with api.Runtime() as rt:  # the default model: it writes " I need ..." after "Thought:"
        yield rt


@pytest.fixture(scope="module")
def free_thought(runtime) -> str:
    value = api.compile(REACT, "react.sgl").think([], runtime=runtime)
    assert value.startswith("I ") and "\n" in value  # what the stops below cut
    return value


@pytest.mark.parametrize("stop", [" ", " need", "\n"])
def test_a_free_gen_stops_after_the_healed_space(runtime, free_thought, stop):
    # " " equals the healed space, " need" contains it (it would straddle the prompt)
    value = api.compile(REACT, "react.sgl").think([stop], runtime=runtime)
    assert value == free_thought.split(stop)[0] != ""


def test_the_healed_space_stays_in_the_prompt(runtime, free_thought):
    second = 'gen t(stop=stop, max_tokens=48)\n        "\\nNext: " gen u(max_tokens=2)'
    prog = api.compile(REACT.replace("gen t(stop=stop, max_tokens=48)", second), "react.sgl")
    trace = Trace()
    assert prog.think([" "], runtime=runtime, trace=trace) == "I"
    gens = [r for r in trace.records if r["kind"] == "gen"]
    assert gens[0]["output"] == " I" and gens[0]["value_text"] == "I"
    assert gens[1]["prompt"].endswith("\nThought: I\nNext:")


CONSTRAINED = '''
fn hours(stop: list[str]) -> str:
    "A day has 24 hours. A day is " gen h: /[0-9]+/(stop=stop)
    return h

fn number(stop: list[str]) -> int:
    "Question: What is 12*7? Answer: " gen n: int(stop=stop)
    return n

fn choice(stop: list[str]) -> str:
    "Is the sky blue? Answer: " gen c: "yes" | "no"(stop=stop)
    return c
'''


@pytest.mark.parametrize(("fn", "stops"), [
    ("hours", [" ", "\n"]),  # the example
    ("number", [" "]),
    ("choice", [" y", " n"]),  # stops that contain the healed space
])
def test_constrained_gens_are_not_cut_by_the_healed_space(runtime, fn, stops):
    prog = api.compile(CONSTRAINED, "constrained.sgl")
    plain = getattr(prog, fn)([], runtime=runtime)
    assert getattr(prog, fn)(stops, runtime=runtime) == plain
    assert plain not in ("", None)


def test_stop_regex_and_min_tokens_from_sgl(runtime, free_thought):
    source = REACT.replace("gen t(stop=stop, max_tokens=48)",
                           'gen t(stop_regex=["[.]\\\\n", "[0-9]+[*]"], max_tokens=48)')
    assert check_program(source, "react.sgl")[1] == []
    value = api.compile(source, "react.sgl").think([], runtime=runtime)
    assert value == free_thought.split("12*")[0]
    late = REACT.replace("gen t(stop=stop, max_tokens=48)",
                         "gen t(stop=stop, min_tokens=4, max_tokens=48)")
    value = api.compile(late, "react.sgl").think([" "], runtime=runtime)
    assert free_thought.startswith(value) and free_thought[len(value)] == " "
    assert len(value.split(" ")) > 1  # the stops in the first 4 tokens did not count


@pytest.mark.parametrize(("args", "message"), [
    ('stop_regex="a*"', "stop_regex 'a*': the regex matches the empty text"),
    ('stop_regex=["(?=x)"]', "stop_regex '(?=x)': lookaround assertions are not supported"),
    ("min_tokens=-1", "min_tokens must be an integer >= 0, got -1"),
])
def test_bad_constant_values_are_caught_by_the_check(args, message):
    source = f"fn f() -> str:\n    \"Q: \" gen t({args})\n    return t\n"
    _, diags = check_program(source, "bad.sgl")
    assert any(message in d.message for d in diags if d.is_error), diags


def test_min_tokens_with_a_constraint_is_a_clear_gen_error(runtime):
    prog = api.compile("fn f() -> int:\n    \"N: \" gen n: int(min_tokens=2)\n    return n\n",
                       "mt.sgl")
    with pytest.raises(Exception, match="min_tokens cannot be combined with regex"):
        prog.f(runtime=runtime)
