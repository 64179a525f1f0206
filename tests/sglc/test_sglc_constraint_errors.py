"""Every ConstraintError reachable from SGL source is a located diagnostic: `sglc check`
prints file:line:col, the source line, a caret under the offending construct and a hint, and
exits 1 (`--format json` prints JSON); `sglc.compile` raises CompileError, never
ConstraintError. Schema and choice constraints of SGL types always have a regex today, so their
path is exercised with a schema the subset rejects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sglc
import sglc.frontend.regexes
from sglc.cli import main
from sglc.constraints import ConstraintError, check_pattern
from sglc.frontend.regexes import check_gen_constraint
from sglc.lang.types import LiteralT
from sglc.source import DiagnosticSink, Span

PREFIX = "    assistant: gen a: /"
# (regex, 0-based position of the offending construct): one per raise site of the dialect
REGEXES = {
    "inline-flags": ("(?i)yes", 0),
    "scoped-flags": ("a(?s:.)", 1),
    "lookahead": ("ab(?=c)", 2),
    "negative-lookahead": ("a(?!b)", 1),
    "lookbehind": ("(?<=a)b", 0),
    "negative-lookbehind": ("x(?<!a)b", 1),
    "backreference": (r"(a)\1", 3),
    "named-backreference": ("(?P<x>a)(?P=x)", 8),
    "caret-inside": ("a^b", 1),
    "dollar-inside": ("a$b", 1),
    "anchor-escape": (r"\bfoo", 0),
    "possessive": ("a*+", 2),
    "possessive-count": ("a{2,3}+", 6),
    "atomic-group": ("(?>ab)", 0),
    "conditional": ("(a)?(?(1)b|c)", 4),
    "empty-class": (r"x[^\s\S]y", 1),
    "syntax-unbalanced": ("a(b", 1),
    "syntax-class": ("[a-", 0),
    "syntax-nothing-to-repeat": ("a|*", 2),
    "syntax-bad-escape": (r"a\q", 1),
    "syntax-count-order": ("a{2,1}", 2),
}


def _write(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "prog.sgl"
    path.write_text(f"fn main():\n{line}\n    print(a)\n")
    return path


def _assert_located(err: str, path: Path, line: int, col: int) -> None:
    lines = err.splitlines()
    head = f"{path}:{line}:{col}: error: "
    i = next(i for i, text in enumerate(lines) if text.startswith(head))
    assert lines[i + 2].index("^") == col - 1, err  # the caret under the construct
    assert lines[i + 3].startswith("  hint: "), err


@pytest.mark.parametrize("kind", sorted(REGEXES))
def test_every_regex_error_is_located(kind: str, tmp_path: Path, capsys) -> None:
    pattern, position = REGEXES[kind]
    with pytest.raises(ConstraintError) as info:  # what the engine would raise at run time
        check_pattern(pattern)
    assert info.value.position == position
    path = _write(tmp_path, f"{PREFIX}{pattern}/")
    assert main(["check", str(path)]) == 1
    _assert_located(capsys.readouterr().err, path, 2, len(PREFIX) + 1 + position)
    with pytest.raises(sglc.CompileError) as compiled:
        sglc.compile(path.read_text(), filename=str(path))
    (diag,) = compiled.value.diagnostics
    assert (diag.span.line, diag.span.col, diag.message) == (
        2, len(PREFIX) + 1 + position, info.value.message)


def test_a_matches_pattern_is_checked_by_the_same_dialect(tmp_path: Path, capsys) -> None:
    path = tmp_path / "prog.sgl"
    path.write_text('fn main():\n    let ok = matches("yes", /(?i)yes/)\n    print(ok)\n')
    assert main(["check", str(path)]) == 1
    _assert_located(capsys.readouterr().err, path, 2, 30)


def test_anchors_at_the_ends_are_accepted(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, f"{PREFIX}^[a-z]+$/")
    assert main(["check", str(path)]) == 0
    assert sglc.compile(path.read_text()).ir is not None


def test_a_schema_without_a_regex_is_located(tmp_path: Path, capsys, monkeypatch) -> None:
    """No SGL type maps to a schema outside the subset today; a rejected one is reported at
    the constraint with the JSON pointer, before the IR pass could raise."""
    monkeypatch.setattr(sglc.frontend.regexes, "json_schema",
                        lambda t: {"type": "object", "properties": {
                            "x": {"type": "number", "minimum": 0}}})
    path = tmp_path / "prog.sgl"
    path.write_text("schema P:\n    x: float\nfn main():\n    assistant: gen a: P\n"
                    "    print(a)\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    _assert_located(err, path, 4, 23)
    assert "(at /properties/x/minimum)" in err
    with pytest.raises(sglc.CompileError):
        sglc.compile(path.read_text())


def test_the_real_cli_prints_json_diagnostics(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{PREFIX}(?i)yes/")
    proc = subprocess.run([sys.executable, "-m", "sglc", "check", "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    (diag,) = json.loads(proc.stdout)
    assert (diag["line"], diag["col"], diag["code"]) == (2, len(PREFIX) + 1, "unsupported-regex")
    assert diag["message"] == "inline flags are not supported" and diag["hint"]
    proc = subprocess.run([sys.executable, "-m", "sglc", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and f"{path}:2:{len(PREFIX) + 1}: error: " in proc.stderr


def test_an_empty_choice_is_reported_at_the_constraint() -> None:
    sink = DiagnosticSink()
    span = Span("t.sgl", 3, 12, 3, 14)
    assert not check_gen_constraint(LiteralT(()), span, sink)
    (diag,) = sink.items
    assert diag.span == span and "non-empty" in diag.message and diag.code == "bad-constraint"
    assert check_gen_constraint(LiteralT(("a", "b")), span, sink) and len(sink.items) == 1


_LEAVES = st.sampled_from(["int", "float", "bool", "str", "json", "Inner", '"a" | "b\\"c"'])
_TYPES = st.recursive(_LEAVES, lambda inner: st.one_of(
    inner.map(lambda t: f"list[{t}]"), inner.map(lambda t: f"dict[str, {t}]")), max_leaves=3)


@settings(max_examples=20, deadline=None, database=None, derandomize=True)
@given(field=_TYPES, constraint=_TYPES, optional=st.booleans())
def test_every_sgl_type_constraint_has_a_regex(field: str, constraint: str, optional: bool):
    """So the schema- and choice-side ConstraintErrors are unreachable from SGL today."""
    field = f"{field} | None" if optional and "|" not in field else field
    source = (f"schema Inner:\n    n: int\nschema Outer:\n    f: {field}\n    g: Inner\n"
              f"fn main():\n    assistant:\n        gen a: {constraint}\n        gen b: Outer\n"
              "    print(a, b)\n")
    program = sglc.compile(source)  # CompileError if the checker or the IR pass rejected one
    assert not [d for d in program.diagnostics if d.is_error]
