"""The stdlib examples (examples/stdlib/): each .sgl checks clean with a title docstring and
every example runs end to end on the default model (short gens)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import sglc
from sglc.frontend import check_program
from sglc.runtime.executor.host import load_tools_file
from sglc.stdlib import ratings

EXAMPLES = Path(__file__).parents[2] / "examples" / "stdlib"
SGL = ["mt_bench", "sorry_bench", "reasoning", "web_product"]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"stdlib_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SGL)
def test_example_checks_clean_with_a_title_docstring(name):
    checked, diags = check_program(EXAMPLES / f"{name}.sgl")
    assert diags == [] and checked.main.module.doc


@pytest.mark.parametrize("name", SGL)
def test_sgl_example_runs(runtime, name):
    printed: list[str] = []
    prog = sglc.load(EXAMPLES / f"{name}.sgl")
    if name == "reasoning":
        prog.bind(**load_tools_file(EXAMPLES / "reasoning_tools.py"))
    assert prog.run(runtime=runtime, out=printed.append, max_tokens=8) is None
    assert printed


def test_web_extract_example(runtime):
    rows = _module("web_extract").main(runtime)
    assert rows[-1].field == "all"
    assert rows[-1].true_positives + rows[-1].false_negatives == 6  # 3 fields x 2 pages


def test_leaderboard_example(runtime):
    result = _module("leaderboard").main(runtime, max_tokens=8)
    assert len(result.battles) == 3 * 6  # 3 pairs x 6 questions
    assert {b.model_a for b in result.battles} | {b.model_b for b in result.battles} == \
        {"greedy", "hot", "terse"}
    assert all(b.winner in ratings.WINNERS for b in result.battles)


def test_doctest_loop_example(runtime):
    result = _module("doctest_loop").main(runtime, max_tokens=24)
    assert 1 <= len(result["attempts"]) <= 3
