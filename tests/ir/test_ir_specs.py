"""The spec pass (issue 15): one outcome per spec, for each predicate kind and for calls;
counterexamples checked against Python's `re` and the predicate itself; pushdown."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from sglc.frontend import check_program
from sglc.ir import lower_program, print_program, run_passes
from sglc.ir.instructions import AssertSpec, Gen
from sglc.ir.specs import check_specs


def judged(source: str, pushdown: bool = False):
    checked, diags = check_program(source, filename="t.sgl")
    assert checked.ok, diags
    prog, errors = lower_program(checked)
    assert not errors
    prog, _ = run_passes(prog, skip=("specs",), lints=False)
    return check_specs(prog, pushdown=pushdown)


def one_report(source: str, kind: str | None = None, pushdown: bool = False):
    _, _, reports = judged(source, pushdown)
    picked = [r for r in reports if kind is None or r.kind == kind]
    assert len(picked) == 1, reports
    return picked[0]


def program(constraint: str, spec: str, result_type: str = "str") -> str:
    return f"""
schema P:
    name: str[max=5]
    age: int[min=0, max=99]

fn f() -> {result_type}:
    ensures {spec}
    assistant: gen v: {constraint}
    return v
"""


# (constraint, spec, outcome, the predicate in Python on the value, how a text is read)
CASES = [
    # matches
    ("/[a-c]{2}/", "matches(result, /[a-z]+/)", "proven", None, str),
    ("/[a-c]{2}/", "matches(result, /a+/)", "unproven",
     lambda v: re.fullmatch("a+", v) is not None, str),
    ("/[a-c]{2}/", "matches(result, /[0-9]+/)", "contradictory", None, str),
    # len
    ("/[a-z]{1,5}/", "len(result) <= 5", "proven", None, str),
    ("/[a-z]{1,5}/", "len(result) < 3", "unproven", lambda v: len(v) < 3, str),
    ("/[a-z]{1,5}/", "len(result) > 9", "contradictory", None, str),
    ("/[a-z]{1,5}/", "3 != len(result)", "unproven", lambda v: len(v) != 3, str),
    # in / ==
    ('"yes" | "no"', 'result in ["yes", "no", "maybe"]', "proven", None, str),
    ('"yes" | "no"', 'result in ["yes"]', "unproven", lambda v: v in ["yes"], str),
    ('"yes" | "no"', 'result in ["x"]', "contradictory", None, str),
    ("/ok/", 'result == "ok"', "proven", None, str),
    ("/ok|ko/", 'result == "ok"', "unproven", lambda v: v == "ok", str),
    ("/ok|ko/", 'result not in ["ok", "ko"]', "contradictory", None, str),
    # startswith / endswith
    ("/ab[a-z]*/", 'result.startswith("ab")', "proven", None, str),
    ("/ab[a-z]*/", 'result.endswith("z")', "unproven", lambda v: v.endswith("z"), str),
    ("/ab[a-z]*/", 'result.startswith("x")', "contradictory", None, str),
    # and / or / not
    ("/[a-c]{1,3}/", "not matches(result, /d+/)", "proven", None, str),
    ("/[a-c]{1,3}/", 'len(result) == 1 or result.startswith("a")', "unproven",
     lambda v: len(v) == 1 or v.startswith("a"), str),
    ("/[a-c]{1,3}/", 'len(result) > 3 and result.startswith("a")', "contradictory", None, str),
    # numeric ranges on ints
    ("int[min=0, max=9]", "0 <= result and result < 150", "proven", None, int),
    ("int", "0 <= result < 150", "unproven", lambda v: 0 <= v < 150, int),
    ("int[min=0, max=9]", "result > 20", "contradictory", None, int),
    ("int[min=0, max=9]", "result in [1, 2, 3]", "unproven", lambda v: v in [1, 2, 3], int),
]


@pytest.mark.parametrize("constraint, spec, outcome, holds, read", CASES)
def test_each_predicate_kind_has_all_three_outcomes(constraint, spec, outcome, holds, read):
    result_type = "int" if read is int else "str"
    report = one_report(program(constraint, spec, result_type))
    v = report.verdict
    assert v.outcome == outcome, v
    if outcome == "unproven":  # the counterexample: the constraint admits it, the spec not
        assert re.fullmatch(v.constraint_regex, v.counterexample)
        assert not holds(read(v.counterexample))
    if outcome == "contradictory":
        assert v.source_span is not None and v.source_span.line == 8  # the gen


@pytest.mark.parametrize("spec, outcome, holds", [
    ("result.age < 150", "proven", None),
    ("result.age >= 18", "unproven", lambda v: v >= 18),
    ("result.age > 200", "contradictory", None),
    ("len(result.name) <= 5", "proven", None),
    ("len(result.name) < 2", "unproven", lambda v: len(v) < 2),
    ('result.name.startswith("ab")', "unproven", lambda v: v.startswith("ab")),
    ("len(result.name) > 7", "contradictory", None),
])
def test_schema_fields(spec, outcome, holds):
    import json

    v = one_report(program("P", spec, "P")).verdict
    assert v.outcome == outcome, v
    if outcome == "unproven":
        assert re.fullmatch(v.constraint_regex, v.counterexample)
        assert not holds(json.loads(v.counterexample))


CALLS = """
fn short(x: str) -> str:
    requires len(x) <= 3
    return x

fn main():
    assistant: gen w: {constraint}
    print(short(w))
"""


@pytest.mark.parametrize("constraint, outcome", [
    ("/[a-z]{1,3}/", "proven"), ("/[a-z]{1,4}/", "unproven"), ("/[a-z]{5,6}/", "contradictory"),
])
def test_calls_compose_against_the_callees_requires(constraint, outcome):
    prog, diags, reports = judged(CALLS.format(constraint=constraint))
    (call,) = [r for r in reports if r.kind == "call"]
    assert call.verdict.outcome == outcome and call.span.line == 8
    if outcome == "unproven":
        cex = call.verdict.counterexample
        assert re.fullmatch(constraint.strip("/"), cex) and not len(cex) <= 3
    (req,) = [r for r in reports if r.kind == "requires"]
    assert req.verdict.outcome == "runtime" and "parameter" in req.verdict.reason
    codes = {d.code for d in diags if d.span.line == 8}
    assert codes == {{"proven": "spec-proven", "unproven": "spec-unproven",
                      "contradictory": "spec-contradictory"}[outcome]}


def test_a_constant_argument_is_checked_too():
    _, diags, _ = judged(CALLS.replace("print(short(w))", 'print(short(w), short("abcd"))')
                         .format(constraint="/a/"))
    (error,) = [d for d in diags if d.is_error]
    assert error.code == "spec-contradictory" and "'abcd'" in error.message


@pytest.mark.parametrize("spec, reason", [
    ("len(result) < len(x)", "several values"),
    ("lookup(result)", "lookup"),
    ("result + 'a' == 'b'", "arithmetic"),
])
def test_non_regular_specs_are_stated_as_runtime_only(spec, reason):
    source = f"""
extern fn lookup(s: str) -> bool

fn f(x: str) -> str:
    ensures {spec}
    assistant: gen v: /[a-z]+/
    return v
"""
    prog, diags, reports = judged(source)
    (report,) = [r for r in reports if r.kind == "ensures"]
    assert report.verdict.outcome == "runtime" and reason in report.verdict.reason
    (diag,) = [d for d in diags if d.span.line == 5]
    assert diag.severity == "note" and diag.code == "spec-runtime"
    assert any(isinstance(i, AssertSpec) for _, _, i in prog.functions["t.f"].instructions())


def test_a_proof_that_needs_the_gen_to_finish_checks_max_tokens():
    tight = program("/[a-z]{20}/(max_tokens=5)", "len(result) == 20")
    v = one_report(tight).verdict
    assert v.outcome == "unproven" and "may be cut by max_tokens" in v.reason
    assert one_report(tight.replace("max_tokens=5", "max_tokens=21")).verdict.outcome == "proven"


def test_proven_checks_leave_the_ir_and_unproven_ones_stay():
    prog, diags, _ = judged(program("/[a-z]{1,5}/", "len(result) <= 5"))
    assert not [i for _, _, i in prog.functions["t.f"].instructions() if isinstance(i, AssertSpec)]
    assert [d.code for d in diags] == ["spec-proven"]
    prog, diags, _ = judged(program("/[a-z]{1,5}/", "len(result) < 3"))
    assert [i for _, _, i in prog.functions["t.f"].instructions() if isinstance(i, AssertSpec)]
    assert "counterexample" not in diags[0].message and '"aaa"' in diags[0].message


def test_every_return_of_an_ensures_is_checked():
    source = """
fn f(flag: bool) -> str:
    ensures len(result) <= 3
    if flag:
        return "toolong"
    assistant: gen v: /[a-z]{1,3}/
    return v
"""
    (report,) = [r for r in judged(source)[2] if r.kind == "ensures"]
    assert report.verdict.outcome == "contradictory" and "'toolong'" in report.verdict.reason


@pytest.mark.parametrize("constraint, spec, value_ok", [
    ("str", "len(result) <= 4", lambda v: len(v) <= 4),
    ("int", "result >= 0 and result < 150", lambda v: 0 <= int(v) < 150),
    ("/[a-z0-9]{1,6}/", "matches(result, /[a-z]+/)", lambda v: v.isalpha()),
])
def test_pushdown_narrows_the_constraint_and_proves_the_spec(constraint, spec, value_ok):
    result_type = "int" if constraint == "int" else "str"
    prog, diags, reports = judged(program(constraint, spec, result_type), pushdown=True)
    (report,) = reports
    assert report.pushed and report.verdict.outcome == "proven"
    (gen,) = [i for _, _, i in prog.functions["t.f"].instructions() if isinstance(i, Gen)]
    assert gen.narrowed_by == (f"ensures {spec}",)
    assert f"narrowed by [ensures {spec}]" in print_program(prog)
    for text in ["", "a", "abcd", "abcde", "0", "-1", "149", "150", "a1", "zzzzzz"]:
        if re.fullmatch(gen.regex, text):
            assert value_ok(text), text
    assert [d.code for d in diags] == ["spec-pushed"]


def test_pushdown_into_a_schema_field_narrows_its_keywords():
    prog, _, reports = judged(program("P", "result.age >= 18 and len(result.name) >= 2", "P"),
                              pushdown=True)
    assert all(r.verdict.outcome == "proven" for r in reports)
    (gen,) = [i for _, _, i in prog.functions["t.f"].instructions() if isinstance(i, Gen)]
    schema = prog.schemas[gen.constraint.schema]
    assert schema["properties"]["age"]["minimum"] == 18
    assert schema["properties"]["name"]["minLength"] == 2
    assert re.fullmatch(gen.regex, '{"name":"ab","age":18}')
    assert not re.fullmatch(gen.regex, '{"name":"ab","age":17}')
    assert not re.fullmatch(gen.regex, '{"name":"a","age":20}')


def test_no_spec_pushdown_keeps_the_constraint_and_the_check():
    source = program("str", "len(result) <= 4")
    prog, diags, reports = judged(source, pushdown=False)
    (gen,) = [i for _, _, i in prog.functions["t.f"].instructions() if isinstance(i, Gen)]
    assert gen.regex is None and reports[0].verdict.outcome == "unproven"
    checked, _ = check_program(source, filename="t.sgl")
    lowered, _ = lower_program(checked)
    prog, diags = run_passes(lowered, skip=("spec_pushdown",))
    assert any(d.code == "spec-unproven" for d in diags)


def test_select_options_are_a_finite_language():
    source = """
fn f() -> str:
    ensures result in ["a", "b"]
    select c in ["a", "b"]
    return c
"""
    assert one_report(source).verdict.outcome == "proven"


def test_a_free_gen_never_holds_its_stop_string():
    source = """
fn f() -> str:
    assistant: gen t(stop="END")
    assert not matches(t, /[\\s\\S]*END[\\s\\S]*/)
    assert len(t) < 5
    return t
"""
    reports = judged(source)[2]
    assert [r.verdict.outcome for r in reports] == ["proven", "unproven"]
    assert len(reports[1].verdict.counterexample) == 5


def test_check_json_carries_each_outcome_for_tools():
    _, diags, _ = judged(program("/[a-z]{1,5}/", "len(result) < 3"))
    (diag,) = diags
    data = diag.to_json()["data"]
    assert data["outcome"] == "unproven" and data["counterexample"] == "aaa"
    assert data["source_location"] == "t.sgl:8:16" and data["constraint_regex"] == "[a-z]{1,5}"
    assert hash(diag) == hash(replace(diag, data=None))


def test_decimal_ranges_are_exact_on_exponent_free_texts():
    import operator

    from sglc.ir.specs.decimals import DECIMAL_TEXTS, decimal_regex

    texts = [s + a + f for a in ("0", "1", "2", "9", "10", "12", "99", "149", "150", "151")
             for f in ("", ".0", ".00", ".5", ".05", ".25", ".249", ".251", ".99", ".001")
             for s in ("", "-")]
    assert all(re.fullmatch(DECIMAL_TEXTS, t) for t in texts)
    ops = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
           "==": operator.eq}
    for op, holds in ops.items():
        for c in (0, 1, 150, 0.5, 0.25, 12.05, -0.5, -1, 149.99, 0.001):
            regex = decimal_regex(op, c)
            for t in texts:
                assert (regex is not None and re.fullmatch(regex, t) is not None) == \
                    holds(float(t), c), (op, c, t)


def test_float_ranges():
    from sglc.constraints import FLOAT_REGEX

    v = one_report(program("float", "result >= 0 and result <= 1", "float")).verdict
    assert v.outcome == "unproven"
    assert re.fullmatch(FLOAT_REGEX, v.counterexample) and not 0 <= float(v.counterexample) <= 1
    v = one_report(program("float", "result > 0 or result <= 0", "float")).verdict
    assert v.outcome == "runtime" and "exponent" in v.reason  # 1e5 is not read by automata
    prog, _, (report,) = judged(program("float", "result >= 0 and result <= 1", "float"), True)
    assert report.pushed and report.verdict.outcome == "proven"
    (gen,) = [i for _, _, i in prog.functions["t.f"].instructions() if isinstance(i, Gen)]
    for text in ("0", "0.5", "1", "1.0", "-0", "1.01", "2", "-0.1", "1e0"):
        assert bool(re.fullmatch(gen.regex, text)) == (text != "1e0" and 0 <= float(text) <= 1)
