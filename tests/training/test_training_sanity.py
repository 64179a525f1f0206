"""The greedy sanity check's tool and scoring."""

from __future__ import annotations

from sglc.training.data import generate
from sglc.training.sanity import calculator, is_correct


def test_calculator_evaluates_one_operator_and_refuses_the_rest():
    assert calculator("12*7") == "84"
    assert calculator(" 905 - 17 ") == "888"
    assert calculator("3+4") == "7"
    assert calculator("import os").startswith("error")
    assert calculator("1+2+3").startswith("error")


def test_json_answers_compare_as_objects():
    example = generate(0, 1, "heldout", skills=("json_extraction",))[0]
    spaced = example.answer.replace(",", ", ").replace(":", ": ")
    assert is_correct(example, spaced)
    assert not is_correct(example, example.answer[:-1])
    yes_no = generate(0, 1, "heldout", skills=("yes_no",))[0]
    assert is_correct(yes_no, f" {yes_no.answer}\n") and not is_correct(yes_no, "Maybe")
