"""Grammar constraints in SGL: `grammar NAME: r\"\"\"...\"\"\"` items and `gen x: grammar(...)`
(a .lark file next to the program, or an item's name). `sglc check` reports a grammar's
error at its own line and column inside the grammar (the .lark file, or the inline block),
never a traceback; it notes the schemas that decode on the grammar path. The IR carries the
grammar to the engine (`Gen.grammar`), and a saved program keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sglc
from sglc.cli import main
from sglc.ir.instructions import Gen
from sglc.ir.program import IRProgram
from sglc.ir.serialize import program_from_json, program_to_json

ARITH = 'start: expr\nexpr: NUM | expr "+" NUM\nNUM: /[0-9]{1,3}/\n'
RECURSIVE = {"$defs": {"n": {"type": "object", "required": ["k"], "properties": {
    "k": {"type": "array", "maxItems": 2, "items": {"$ref": "#/$defs/n"}}}}},
    "$ref": "#/$defs/n"}


def _program(tmp_path: Path, body: str, head: str = "", files: dict[str, str] | None = None
             ) -> Path:
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "prog.sgl"
    path.write_text(f"{head}fn main():\n{body}\n")
    return path


def _check(path: Path, capsys) -> tuple[int, str]:
    code = main(["check", str(path)])
    return code, capsys.readouterr().err


def _gens(prog: sglc.Program) -> dict[str, Gen]:
    return _gens_of(prog.ir)


def test_a_grammar_file_and_a_grammar_item_compile_into_the_gen(tmp_path, capsys):
    head = f'grammar ARITH: r"""\n{ARITH}"""\n\n'
    path = _program(tmp_path, '    "SQL: " gen q: grammar("arith.lark")(max_tokens=8)\n'
                    '    "\\nSum: " gen s: grammar(ARITH)\n    print(q, s)', head,
                    {"arith.lark": ARITH})
    code, err = _check(path, capsys)
    assert code == 0, err
    gens = _gens(sglc.load(path))
    assert gens["q"].grammar == ARITH and gens["q"].regex is None
    assert gens["s"].grammar == f"\n{ARITH}"  # the raw string, as written
    assert gens["q"].value_type == "str"
    saved = program_from_json(program_to_json(sglc.load(path).ir))
    assert _gens_of(saved)["s"].grammar == f"\n{ARITH}"


def _gens_of(ir_program: IRProgram) -> dict[str, Gen]:
    return {i.dest: i for fn in ir_program.functions.values() for b in fn.blocks
            for i in b.instrs if isinstance(i, Gen)}


def test_an_error_in_a_grammar_file_is_located_in_that_file(tmp_path, capsys):
    bad = 'start: expr\nexpr: NUM | "(" expr\nNUM: /[0-9+/\n'
    path = _program(tmp_path, '    gen q: grammar("bad.lark")\n    print(q)',
                    files={"bad.lark": bad})
    code, err = _check(path, capsys)
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == f"{tmp_path / 'bad.lark'}:3:6: error: bad grammar: invalid regex " \
        '"[0-9+": error: unclosed character class'
    assert lines[1] == "NUM: /[0-9+/"
    assert lines[2] == "     ^"
    assert "Traceback" not in err


def test_an_error_in_an_inline_grammar_is_located_in_the_sgl_file(tmp_path, capsys):
    head = 'grammar G: r"""start: "a" B\nB: "b" | (\n"""\n\n'
    path = _program(tmp_path, '    gen q: grammar(G)\n    print(q)', head)
    code, err = _check(path, capsys)
    assert code == 1
    first, source, caret = err.splitlines()[:3]
    assert first.startswith(f"{path}:2:11: error: bad grammar: ")
    assert source == 'B: "b" | ('
    assert caret == " " * 10 + "^"


def test_an_error_on_the_first_line_of_an_inline_grammar_counts_from_the_quotes(tmp_path,
                                                                                capsys):
    path = _program(tmp_path, '    gen q: grammar(G)\n    print(q)',
                    'grammar G: r"start: foo"\n\n')
    code, err = _check(path, capsys)
    assert code == 1
    assert err.splitlines()[0] == f'{path}:1:21: error: bad grammar: unknown name: "foo"'


@pytest.mark.parametrize(("body", "head", "message"), [
    ('    gen q: grammar(NOPE)\n    print(q)', "", "names no grammar item"),
    ('    gen q: grammar("missing.lark")\n    print(q)', "", "cannot read grammar file"),
    ('    gen q: grammar("../x.lark")\n    print(q)', "", "inside the program's folder"),
    ('    gen q: grammar(3)\n    print(q)', "", "takes a .lark file name"),
    ('    gen q: grammar(G)\n    print(q)', 'grammar G: """start: "a"\n"""\n\n',
     "a grammar is written as a raw string"),
    ('    print(1)', 'grammar G: r"start: \\"a\\""\ngrammar G: r"start: \\"b\\""\n\n',
     "'G' is already defined"),
])
def test_bad_grammar_references_are_located_errors(tmp_path, capsys, body, head, message):
    code, err = _check(_program(tmp_path, body, head), capsys)
    assert code == 1 and message in err and "Traceback" not in err
    assert err.startswith(str(tmp_path / "prog.sgl") + ":")


def test_check_says_which_path_a_schema_takes(tmp_path, capsys):
    body = (f'    "T: " gen t: schema({json.dumps(RECURSIVE)})(max_tokens=64)\n'
            f'    "P: " gen p: schema({{"type": "integer"}})\n    print(t, p)')
    path = _program(tmp_path, body)
    code, err = _check(path, capsys)
    assert code == 0, err
    notes = [ln for ln in err.splitlines() if ": note: " in ln]
    assert len(notes) == 1 and notes[0].startswith(f"{path}:2:")
    assert "grammar path" in notes[0] and "recursive reference" in notes[0]
    gens = _gens(sglc.load(path))
    assert gens["t"].regex is None and json.loads(gens["t"].grammar)["grammars"]
    assert gens["p"].regex is not None and gens["p"].grammar is None


def test_check_says_which_grammars_take_the_regex_path(tmp_path, capsys):
    head = 'grammar FLAT: r"""\nstart: NUM ("+" NUM)*\nNUM: /[0-9]{1,3}/\n"""\n'
    body = ('    "F: " gen f: grammar(FLAT)(max_tokens=16)\n'
            '    "A: " gen a: grammar("arith.lark")(max_tokens=16)\n    print(f, a)')
    path = _program(tmp_path, body, head, {"arith.lark": ARITH})
    code, err = _check(path, capsys)
    assert code == 0, err
    notes = [ln for ln in err.splitlines() if ": note: " in ln]
    assert len(notes) == 1 and "regex path" in notes[0], notes
    assert notes[0].startswith(f"{path}:6:"), notes  # the gen of FLAT, not the recursive one
