"""stdlib verify: the annotate-check-retry loop with real checkers (doctest in a subprocess;
Dafny's acceptance rules, and the runner against a stand-in verifier script)."""

from __future__ import annotations

import stat
import sys

import pytest
from scripted import ScriptedClient

import sglc
from sglc.stdlib import checkers
from sglc.stdlib.loader import load

ADD = "def add(a, b):\n    return a + b\n"
GOOD = 'def add(a, b):\n    """\n    >>> add(2, 3)\n    5\n    """\n    return a + b\n'
WRONG = 'def add(a, b):\n    """\n    >>> add(2, 3)\n    6\n    """\n    return a + b\n'


def test_python_doctest_checker():
    check = checkers.python_doctest()
    assert check(ADD, GOOD) == ""
    assert "Failed example" in check(ADD, WRONG) and "Expected:\n    6" in check(ADD, WRONG)
    assert check(ADD, GOOD.replace("a + b", "b + a")).startswith("the code was changed")
    assert check(ADD, ADD).startswith("no doctest examples")
    assert check(ADD, "def add(a, b:\n").startswith("syntax error")


DFY = "method Abs(x: int) returns (y: int)\n  ensures y >= 0\n{\n  if x < 0 { y := -x; } else { y := x; }\n}\n"


def test_dafny_guard_keeps_the_specification():
    assert checkers.dafny_guard(DFY, DFY) == []
    weakened = DFY.replace("ensures y >= 0", "ensures true")
    assert checkers.dafny_guard(DFY, weakened) == \
        ["a specification line was changed or removed: ensures y >= 0"]
    assert checkers.dafny_guard(DFY, DFY + "// assume false\n") == ["'assume false' is not allowed"]


def test_dafny_runner_with_a_stand_in_verifier(tmp_path):
    fake = tmp_path / "fake-dafny"
    fake.write_text(f"#!{sys.executable}\nimport sys\nsrc = open(sys.argv[2]).read()\n"
                    "ok = 'invariant' in src\n"
                    "print('Dafny program verifier finished with 1 verified, %d errors'"
                    " % (0 if ok else 1))\nsys.exit(0 if ok else 4)\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    check = checkers.dafny(str(fake))
    assert check(DFY, DFY.replace("{\n", "{\n  // invariant\n", 1)) == ""
    assert "1 errors" in check(DFY, DFY)
    assert check(DFY, DFY + "{:verify false}") == "'{:verify false}' is not allowed"
    with pytest.raises(FileNotFoundError, match="not on PATH"):
        checkers.dafny(str(tmp_path / "missing"))


def test_the_loop_feeds_errors_back_until_accepted():
    def reply(prompt: str, params, i: int) -> str:
        return GOOD if "The verifier reported" in prompt else WRONG

    client = ScriptedClient(reply)
    verify = load("verify").bind(check=checkers.python_doctest())
    result = verify.annotate(ADD, "python", runtime=sglc.Runtime(client=client))
    assert result["verified"] is True and result["program"] == GOOD
    assert [a["errors"] == "" for a in result["attempts"]] == [False, True]
    assert "Failed example" in client.prompts[1] and "```python\n" + ADD in client.prompts[0]


def test_the_loop_is_bounded():
    client = ScriptedClient(lambda *_: WRONG)
    verify = load("verify").bind(check=checkers.python_doctest())
    result = verify.annotate(ADD, "python", "", 2, runtime=sglc.Runtime(client=client))
    assert result["verified"] is False and len(result["attempts"]) == 2
    assert len(client.prompts) == 2


def test_annotate_on_the_default_model(runtime):
    verify = load("verify").bind(check=checkers.python_doctest())
    result = verify.annotate(ADD, "python", "", 2, runtime=runtime, max_tokens=24)
    assert 1 <= len(result["attempts"]) <= 2
    assert result["verified"] is (result["attempts"][-1]["errors"] == "")
    assert result["program"] == result["attempts"][-1]["program"]
