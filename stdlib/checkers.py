"""External checkers for `verify.annotate`: each is a `check(original, annotated) -> str`
host function returning "" when the annotated program is accepted, else the errors.

- `dafny(...)`: runs the Dafny verifier on the annotated program, after DafnyBench's
  acceptance rules (`dafny_guard`): every `requires`/`ensures` line of the original is
  still there unchanged, and neither `{:verify false}` nor `assume false` appears.
- `python_doctest(...)`: the code must be the original's (compared as ASTs with docstrings
  removed) and the docstring must hold examples, which `python -m doctest` runs.

Both run the checked program in a subprocess with a timeout; `python_doctest` executes the
model's examples (and the original code) on this machine, in isolated mode (-I).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

Checker = Callable[[str, str], str]
_FORBIDDEN = ("{:verify false}", "assume false")


def dafny_guard(original: str, annotated: str) -> list[str]:
    """DafnyBench's rules beyond verification: the specification is the original's."""
    errors = []
    kept = {line.strip() for line in annotated.splitlines()}
    for line in original.splitlines():
        if line.strip().startswith(("requires", "ensures")) and line.strip() not in kept:
            errors.append(f"a specification line was changed or removed: {line.strip()}")
    errors += [f"'{word}' is not allowed" for word in _FORBIDDEN if word in annotated]
    return errors


def _run(argv: list[str], source: str, suffix: str, timeout_s: float) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="sglc-check-") as folder:
        path = Path(folder) / f"program{suffix}"
        path.write_text(source, encoding="utf-8")
        try:
            done = subprocess.run([*argv, str(path)], capture_output=True, text=True,
                                  timeout=timeout_s, cwd=folder, check=False)
        except subprocess.TimeoutExpired:
            return -1, f"the checker timed out after {timeout_s:g} s"
        return done.returncode, (done.stdout + done.stderr).replace(str(path), path.name)


def dafny(dafny_path: str = "dafny", *, timeout_s: float = 120.0) -> Checker:
    """A checker running `dafny verify` (the binary is looked up now: FileNotFoundError if
    it is missing). Accepted: the guard passes, exit status 0 and "0 errors" reported."""
    binary = shutil.which(dafny_path)
    if binary is None:
        raise FileNotFoundError(f"the Dafny verifier {dafny_path!r} is not on PATH; install "
                                "it or pass dafny_path=")

    def check(original: str, annotated: str) -> str:
        errors = dafny_guard(original, annotated)
        if errors:
            return "\n".join(errors)
        status, output = _run([binary, "verify"], annotated, ".dfy", timeout_s)
        return "" if status == 0 and " 0 errors" in output else output.strip()

    return check


def _code_shape(source: str) -> str:
    """The module's AST without docstrings, as text."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def python_doctest(*, timeout_s: float = 10.0, python: str = sys.executable) -> Checker:
    """A checker for Python annotated with doctest examples."""

    def check(original: str, annotated: str) -> str:
        try:
            changed = _code_shape(original) != _code_shape(annotated)
        except SyntaxError as exc:
            return f"syntax error: {exc.msg} (line {exc.lineno})"
        if changed:
            return "the code was changed: only add a docstring with examples"
        if ">>>" not in annotated:
            return "no doctest examples (>>> lines) in the docstring"
        status, output = _run([python, "-I", "-m", "doctest"], annotated, ".py", timeout_s)
        return "" if status == 0 else output.strip()

    return check


__all__ = ["Checker", "dafny", "dafny_guard", "python_doctest"]
