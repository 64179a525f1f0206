"""`sglc fmt`: the layout rules, idempotence and an unchanged AST on every .sgl file of the
repo and on generated programs, comments kept, and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from sgl_programs import layouts

from sglc.editor import FormatError, format_source
from sglc.editor.formatter import KNOWN_RULES, ast_shape
from sglc.editor.layout_tokens import comments_of, tokens_of
from sglc.frontend import parse_source
from sglc.frontend.parser import get_parser

ROOT = Path(__file__).resolve().parents[2]
REPO_FILES = sorted([*(ROOT / "examples").glob("*.sgl"), *(ROOT / "stdlib").glob("*.sgl"),
                     *(ROOT / "tests" / "frontend" / "programs").glob("*.sgl"),
                     *(ROOT / "tests" / "frontend" / "golden").glob("*.sgl")])


def _comments(text: str) -> list[str]:
    return [c.text for c in comments_of(text, tokens_of(text))]


def assert_formats_cleanly(source: str) -> str:
    """Formatting keeps the AST and the comments and is idempotent; returns the result."""
    before, _ = parse_source(source)
    out = format_source(source)
    after, diags = parse_source(out)
    assert after is not None, diags
    assert ast_shape(after) == ast_shape(before)
    assert _comments(out) == _comments(source)
    assert format_source(out) == out
    return out


@pytest.mark.parametrize("path", REPO_FILES, ids=[f"{p.parent.name}/{p.name}" for p in REPO_FILES])
def test_every_sgl_file_of_the_repo(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    if parse_source(source)[0] is None:
        with pytest.raises(FormatError) as info:
            format_source(source, path.name)
        assert info.value.diagnostics == parse_source(source, path.name)[1]
        return
    assert_formats_cleanly(source)


def test_the_examples_and_stdlib_are_formatted() -> None:
    for path in [*(ROOT / "examples").glob("*.sgl"), *(ROOT / "stdlib").glob("*.sgl")]:
        source = path.read_text(encoding="utf-8")
        assert format_source(source) == source, f"run `sglc fmt {path.relative_to(ROOT)}`"


MESSY = '''\
# leading comment
import  tools as t
schema Person :
  """doc"""
  name : str  # the name
  age:int
fn f( a:int=1 , b = 2 )->str :
  return "x"
fn react(question:str,max_steps :int=4)->str:
   requires len( question )>0


   # a comment in the body
   for _step in range( max_steps ):
         assistant :
             "Thought: " gen thought( stop = "\\n" , max_tokens=48 )
             "\\nAction: " select action in [ "calculator","finish" ]
         if action=="finish" :
             return arg
         # comment at for level
      # between levels: the nearest block at or left of it
   let xs = [1,
      2,   # two
      -3]
   let ys = [
    1, 2,
       # standalone in brackets
    3
   ]
   let d = { "a" : 1 , "b":xs[ 1: ] }
   let z = not(a)  and -xs[ -1 ]**2 if xs else t . calculator( "1"  )
   gen code : /[A-Z]+/ ( max_tokens = 4 )
   return "no"  # done
# glued to main
fn main(): pass
'''

TIDY = '''\
# leading comment
import tools as t

schema Person:
    """doc"""
    name: str  # the name
    age: int

fn f(a: int = 1, b=2) -> str:
    return "x"

fn react(question: str, max_steps: int = 4) -> str:
    requires len(question) > 0

    # a comment in the body
    for _step in range(max_steps):
        assistant:
            "Thought: " gen thought(stop="\\n", max_tokens=48)
            "\\nAction: " select action in ["calculator", "finish"]
        if action == "finish":
            return arg
        # comment at for level
    # between levels: the nearest block at or left of it
    let xs = [1,
              2,  # two
              -3]
    let ys = [
        1, 2,
        # standalone in brackets
        3
    ]
    let d = {"a": 1, "b": xs[1:]}
    let z = not (a) and -xs[-1] ** 2 if xs else t.calculator("1")
    gen code: /[A-Z]+/(max_tokens=4)
    return "no"  # done

# glued to main
fn main(): pass
'''


def test_the_layout_rules() -> None:
    assert assert_formats_cleanly(MESSY) == TIDY


def test_blank_lines_between_top_level_items() -> None:
    source = ('"""Doc."""\n\n\n\nimport tools\nextern fn a() -> str\nextern fn b() -> str\n'
              'fn main():\n\n    pass\n\n\n\n    pass\nschema S:\n    x: int\n')
    assert assert_formats_cleanly(source) == (
        '"""Doc."""\n\nimport tools\nextern fn a() -> str\nextern fn b() -> str\n\n'
        'fn main():\n    pass\n\n    pass\n\nschema S:\n    x: int\n')


def test_strings_regexes_and_triple_quotes_are_kept_byte_for_byte() -> None:
    source = ('fn f():\n  user "a  {x  +1}  # not a comment"  \'\'\'\n   keep   this\n\'\'\'\n'
              '  gen y: /a  b\\/c/\n  let r = r"\\d  {x}"\n')
    out = assert_formats_cleanly(source)
    assert '"a  {x  +1}  # not a comment" \'\'\'\n   keep   this\n\'\'\'' in out
    assert "gen y: /a  b\\/c/" in out and 'r"\\d  {x}"' in out


def test_tabs_crlf_and_a_missing_final_newline() -> None:
    out = assert_formats_cleanly("fn f():\r\n\tif x:\r\n\t\treturn 1\r\n\treturn 2")
    assert out == "fn f():\n    if x:\n        return 1\n    return 2\n"
    assert format_source("") == "" and format_source("\n\n# only\n\n") == "# only\n"


def test_a_syntax_error_is_reported_not_formatted() -> None:
    with pytest.raises(FormatError) as info:
        format_source("fn f(:\n    pass\n", "bad.sgl")
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.span.file, diag.span.line) == ("syntax", "bad.sgl", 1)


def test_every_grammar_rule_has_its_layout() -> None:
    """A rule the formatter does not know is still printed token by token, but whoever adds
    it to grammar/sgl.lark must decide its layout in sglc/editor/formatter.py (and add it to
    KNOWN_RULES)."""
    rules = set()
    for rule in get_parser().rules:
        for name in (str(rule.origin.name), rule.alias):
            if name and not name.startswith("_"):
                rules.add(str(name))
    unknown = sorted(rules - KNOWN_RULES)
    assert not unknown, f"grammar rules without a layout in sglc fmt: {unknown}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_generated_programs(source: str) -> None:
    if parse_source(source)[0] is None:  # the generator aims for valid syntax only
        pytest.fail(f"the generator wrote a program that does not parse:\n{source}")
    assert_formats_cleanly(source)


# ---- the command line ------------------------------------------------------------------------


def run_sglc(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sglc", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_fmt_command(tmp_path: Path) -> None:
    messy, tidy, bad = tmp_path / "messy.sgl", tmp_path / "sub" / "tidy.sgl", tmp_path / "bad.sgl"
    tidy.parent.mkdir()
    messy.write_text(MESSY)
    tidy.write_text(TIDY)
    bad.write_text("fn f(:\n")

    check = run_sglc("fmt", "--check", "messy.sgl", "sub", cwd=tmp_path)
    assert check.returncode == 1 and check.stderr == "would reformat messy.sgl\n"
    assert messy.read_text() == MESSY

    diff = run_sglc("fmt", "--diff", "messy.sgl", cwd=tmp_path)
    assert diff.returncode == 0 and diff.stdout.startswith("--- messy.sgl (before)\n")
    assert "\n-   requires len( question )>0\n" in diff.stdout
    assert "\n+    requires len(question) > 0\n" in diff.stdout

    done = run_sglc("fmt", ".", cwd=tmp_path)  # a folder: every .sgl under it
    assert done.returncode == 1  # bad.sgl
    assert messy.read_text() == TIDY and tidy.read_text() == TIDY and bad.read_text() == "fn f(:\n"
    assert "reformatted messy.sgl" in done.stderr
    assert "bad.sgl:1:6: error: unexpected" in done.stderr and "Traceback" not in done.stderr

    assert run_sglc("fmt", "--check", "messy.sgl", "sub", cwd=tmp_path).returncode == 0
    piped = run_sglc("fmt", "-", cwd=tmp_path, stdin=MESSY)
    assert (piped.returncode, piped.stdout) == (0, TIDY)
    missing = run_sglc("fmt", "nope.sgl", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr == "sglc: error: file not found: nope.sgl\n"
