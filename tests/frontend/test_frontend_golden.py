"""Every diagnostic kind, pinned: golden/X.sgl is checked and its rendered diagnostics must
equal golden/X.expected exactly. Regenerate with SGLC_UPDATE_GOLDEN=1 (then review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sglc.frontend import check_program, render_all

HERE = Path(__file__).parent
CASES = sorted((HERE / "golden").glob("*.sgl"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_diagnostics(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    program, diags = check_program(Path("golden") / case.name)
    rendered = render_all(diags, program.sources) + "\n"
    expected = case.with_suffix(".expected")
    if os.environ.get("SGLC_UPDATE_GOLDEN"):
        expected.write_text(rendered)
    assert rendered == expected.read_text()
    assert diags, "every golden case reports something"


def test_every_diagnostic_code_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    codes = set()
    for case in CASES:
        codes |= {d.code for d in check_program(Path("golden") / case.name)[1]}
    expected = {
        "syntax", "keyword-as-name", "positional-after-keyword", "string-brace", "invalid-regex",
        "unsupported-regex", "unknown-name", "schema-as-value", "type-mismatch",
        "impossible-comparison", "unknown-attribute", "not-callable", "arity", "unknown-keyword",
        "duplicate-keyword", "optional-access", "gen-param", "param-range", "bad-constraint",
        "select-options", "role-misuse", "rebind-type", "unused-variable", "discarded-value",
        "parallel-value", "branch-assign", "branch-return", "loop-misuse", "spec-misuse",
        "fork-count", "missing-return", "duplicate-name", "schema-field", "schema-recursive",
        "bad-type", "bad-union", "unknown-type", "param-type", "param-order", "outside-fn",
        "unused-import", "bad-import", "import-cycle",
        # issue 23
        "bad-bound", "fork-join", "const-assign", "not-constant", "bad-schema",
        "docstring-not-sent", "stop-in-constraint",
        # issue 25
        "bad-grammar",
    }
    assert expected <= codes, sorted(expected - codes)
