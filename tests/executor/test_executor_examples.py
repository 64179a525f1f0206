"""The examples: each checks clean and runs end to end (a random-weight model: the text is
noise, but every construct executes; extract's int field needs a trained model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_fixtures import make_model_dir  # noqa: E402

import sglc.program as api  # noqa: E402
from sglc.frontend import check_program  # noqa: E402

EXAMPLES = Path(__file__).parents[2] / "examples"
NAMES = ["agent", "chat", "extract", "few_shot", "tree_of_thought", "sql", "org_chart"]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    path = tmp_path_factory.mktemp("examples-model")
    make_model_dir(path, "llama")
    with api.Runtime(model_path=path, max_total_tokens=16384) as rt:
        yield rt


@pytest.mark.parametrize("name", NAMES)
def test_example_checks_clean_with_a_title_docstring(name):
    checked, diags = check_program(EXAMPLES / f"{name}.sgl")
    assert diags == [] and checked.main.module.doc


@pytest.mark.parametrize("name", ["agent", "chat", "few_shot", "tree_of_thought"])
def test_example_runs(runtime, name):
    printed: list[str] = []
    prog = api.load(EXAMPLES / f"{name}.sgl")
    assert prog.run(runtime=runtime, out=printed.append) is None
    assert printed  # every example's main prints its results


def test_agent_answers_every_question_in_order(runtime):
    printed: list[str] = []
    api.load(EXAMPLES / "agent.sgl").run(runtime=runtime, out=printed.append)
    questions = [line.split(" -> ")[0] for line in "".join(printed).splitlines()]
    assert questions == ["What is 12*7?", "What is 45+17?", "What is 9*8?"]
