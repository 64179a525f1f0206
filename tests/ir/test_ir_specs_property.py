"""The spec pass on random small regexes: for `gen v: /R/` and `ensures matches(v, /S/)`,
the verdict agrees with brute-force enumeration of short texts."""

from __future__ import annotations

import re

from hypothesis import given, settings
from regex_strategies import TEXTS, language, regexes

from sglc.frontend import check_program
from sglc.ir import lower_program, run_passes
from sglc.ir.specs import check_specs


def verdict(r: str, s: str):
    source = f"fn f() -> str:\n    ensures matches(result, /{s}/)\n    gen v: /{r}/\n    return v\n"
    checked, diags = check_program(source, filename="p.sgl")
    assert checked.ok, diags
    prog, _ = lower_program(checked)
    prog, _ = run_passes(prog, skip=("specs",), lints=False)
    (report,) = check_specs(prog, pushdown=False)[2]
    return report.verdict


@settings(max_examples=40, deadline=None)
@given(regexes(), regexes())
def test_verdicts_agree_with_enumeration(r: str, s: str) -> None:
    lr, ls = language(r), language(s)
    v = verdict(r, s)
    if lr - ls:
        assert v.outcome != "proven"
    if lr & ls:
        assert v.outcome != "contradictory"
    if v.outcome == "unproven":
        assert re.fullmatch(r, v.counterexample) and not re.fullmatch(s, v.counterexample)
    if v.outcome == "proven":
        assert not lr - ls
    if v.outcome == "contradictory":
        assert not lr & ls
    assert v.outcome in ("proven", "unproven", "contradictory")
    assert TEXTS
