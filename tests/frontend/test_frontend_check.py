"""The checker and the public API: clean examples, types, many errors at once, imports,
JSON output, rendering."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sglc.frontend import Diagnostic, check_program, render, to_json
from sglc.frontend import ast as A
from sglc.frontend.symbols import ForkT
from sglc.lang.types import BOOL, INT, STR, ListT, LiteralT, SchemaT

HERE = Path(__file__).parent
PROGRAMS = sorted((HERE / "programs").glob("*.sgl"))


def check(src: str) -> tuple[object, list[Diagnostic]]:
    return check_program(textwrap.dedent(src), filename="t.sgl")


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_example_programs_check_clean(path: Path) -> None:
    program, diags = check_program(path)
    assert diags == []
    assert program.ok and program.main is not None and "main" in program.main.fns


def test_programs_cover_every_construct() -> None:
    text = "\n".join(p.read_text() for p in PROGRAMS)
    for word in ("import ", "schema ", "requires ", "ensures ", "assert ", "system ", "user ",
                 "assistant:", "gen ", "select ", "fork ", "parallel for", "while ", "break",
                 "elif ", "else:", "return ", '"""', "{", "/"):
        assert word in text, word


def test_types_of_gen_select_fork() -> None:
    program, diags = check('''
        schema P:
            name: str
        fn main():
            assistant:
                gen n: int
                gen p: P
                gen c: "a" | "b"
                select s in ["x", "y"]
                gen t
            fork 2 as b:
                gen v: bool
            print(n, p, c, s, t, b.v)
    ''')
    assert diags == []
    fn = program.main.fns["main"].node
    gens = fn.body[0].body
    types = [program.types[stmt.items[0]] for stmt in gens]
    assert types[0] == INT and isinstance(types[1], SchemaT)
    assert types[2] == LiteralT(("a", "b")) and types[3] == LiteralT(("x", "y"))
    assert types[4] == STR
    call = fn.body[2].expr
    assert program.types[call.args[5]] == ListT(BOOL)
    assert isinstance(program.types[call.args[5].value], ForkT)


def test_many_errors_reported_in_one_run() -> None:
    _, diags = check('''
        fn a() -> int:
            return "x"
        fn b(:
            pass
        fn c():
            print(undefined_one)
            gen x(bogus=1)
        fn d() -> str
            return 1
        fn e():
            print(a(1))
    ''')
    errors = [d for d in diags if d.is_error]
    lines = sorted({d.span.line for d in errors})
    assert len(errors) >= 6
    assert lines == [3, 4, 7, 8, 9, 12]
    assert {d.code for d in errors} >= {"syntax", "type-mismatch", "unknown-name", "gen-param",
                                        "arity"}


def test_broken_declaration_does_not_cascade() -> None:
    _, diags = check('''
        fn helper(x: int -> int:
            return x
        fn main():
            print(helper(1))
    ''')
    assert [d.code for d in diags] == ["syntax"]


def test_imports_stdlib_relative_and_cycle(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.sgl").write_text(
        'schema Item:\n    name: str\n\nfn shout(x: str) -> str:\n    return x.upper()\n')
    (tmp_path / "main.sgl").write_text(textwrap.dedent('''
        import tools
        import "lib/util.sgl" as util
        fn main():
            assistant: gen item: util.Item
            print(util.shout(item.name), tools.search("q"), tools.serch("q"))
    '''))
    program, diags = check_program(tmp_path / "main.sgl")
    assert [(d.code, d.message) for d in diags] == [
        ("unknown-attribute", "module 'tools' has no 'serch'")]
    assert len(program.modules) == 3
    (tmp_path / "a.sgl").write_text('import "main.sgl" as m\n')
    (tmp_path / "main.sgl").write_text('import a\nfn main():\n    pass\n')
    _, diags = check_program(tmp_path / "main.sgl")
    assert "import-cycle" in {d.code for d in diags}


def test_missing_file_is_a_diagnostic(tmp_path: Path) -> None:
    program, diags = check_program(tmp_path / "nope.sgl")
    assert [d.code for d in diags] == ["bad-file"] and not program.ok
    _, diags = check_program(str(tmp_path / "nope.sgl"))
    assert [d.code for d in diags] == ["bad-file"]


def test_render_format_and_json() -> None:
    src = "fn main():\n\tprint(questoin)\n"
    _, diags = check_program(src, filename="x.sgl")
    (d,) = diags
    assert render(d, src) == (
        "x.sgl:2:8: error: unknown name 'questoin'\n"
        "\tprint(questoin)\n"
        "\t      ^~~~~~~~")
    (row,) = json.loads(to_json(diags))
    assert row == {"file": "x.sgl", "line": 2, "col": 8, "end_line": 2, "end_col": 16,
                   "severity": "error", "code": "unknown-name",
                   "message": "unknown name 'questoin'", "hint": None}


def test_render_points_past_the_end_for_eof() -> None:
    d = Diagnostic("error", "boom", A.Span("f", 3, 1, 3, 2), "a hint")
    assert render(d, "a\nb\n") == "f:3:1: error: boom\n\n^\n  hint: a hint"


def test_chained_comparison_and_literal_warning() -> None:
    _, diags = check('''
        fn main():
            assistant: select a in ["search", "finish"]
            if a == "finsh" or 0 < 1 <= 2:
                pass
            if a in ["serch"]:
                pass
    ''')
    assert [d.code for d in diags] == ["impossible-comparison", "impossible-comparison"]
    assert diags[0].hint == "did you mean 'finish'?"


def test_parallel_for_types_and_rules() -> None:
    program, diags = check('''
        fn main():
            let xs = parallel for n in [1, 2]:
                n * 2.0
            let total: float = xs[0]
            print(total)
    ''')
    assert diags == []
