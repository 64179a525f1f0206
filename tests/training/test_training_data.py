"""The conversation generator: seeded, split without overlap, every skill well formed."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from sglc.training.data import SKILLS, generate, iter_examples, prompt_messages, split_of
from sglc.training.skills import REACT_SYSTEM
from sglc.training.skills_facts import final_answer


@pytest.fixture(scope="module")
def train_examples():
    return generate(7, 3000)


def test_same_seed_same_examples_other_seed_differs():
    assert generate(3, 300) == generate(3, 300)
    assert generate(3, 300) != generate(4, 300)


def test_heldout_split_is_disjoint_from_train(train_examples):
    heldout = generate(7, 400, "heldout")
    assert all(split_of(e) == "heldout" for e in heldout)
    assert all(split_of(e) == "train" for e in train_examples)
    train_keys = {(e.skill, e.key) for e in train_examples}
    assert not train_keys & {(e.skill, e.key) for e in heldout}
    # the same question never lands in both splits, whatever the phrasing-level seed
    assert not {(e.skill, e.key) for e in generate(8, 3000)} & {(e.skill, e.key) for e in heldout}


def test_every_skill_appears_in_both_splits(train_examples):
    assert set(Counter(e.skill for e in train_examples)) == set(SKILLS)
    assert set(Counter(e.skill for e in generate(1, 600, "heldout"))) == set(SKILLS)


def test_unknown_split_or_skill_is_an_error():
    with pytest.raises(ValueError, match="split"):
        next(iter_examples(0, "test"))
    with pytest.raises(ValueError, match="unknown skills"):
        next(iter_examples(0, "train", ("poetry",)))


def test_conversations_end_with_the_answer(train_examples):
    for e in train_examples:
        roles = [m["role"] for m in e.messages]
        assert roles[-1] == "assistant" and set(roles) <= {"system", "user", "assistant"}
        last = e.messages[-1]["content"]
        if e.skill.startswith("react"):
            assert last.endswith(f"Input: {e.answer}")
        else:
            assert final_answer(e.skill, last) == e.answer
        assert prompt_messages(e)[-1]["role"] == "user"


def test_react_calculator_format_and_arithmetic():
    for e in generate(2, 100, skills=("react_calculator",)):
        system, question, act, obs, finish = e.messages
        assert system["content"] in {REACT_SYSTEM, "You are a helpful assistant. "
                                     "You can use the tools calculator and search."}
        assert question["content"].startswith("Question: ")
        expression = e.key
        a, op, b = re.fullmatch(r"(\d{1,3})([-+*])(\d{1,3})", expression).groups()
        assert e.answer == str(eval(f"{a}{op}{b}"))  # noqa: S307 - digits and one operator
        assert act["content"] == (f"Thought: I need to compute {expression}.\n"
                                  f"Action: calculator\nInput: {expression}")
        assert obs == {"role": "user", "content": f"Observation: {e.answer}"}
        assert finish["content"] == f"Thought: I know the answer.\nAction: finish\nInput: {e.answer}"
        assert a in question["content"] and b in question["content"]


def test_json_extraction_answers_are_compact_json_of_stated_fields():
    for e in generate(5, 200, skills=("json_extraction",)):
        data = json.loads(e.answer)
        assert e.answer == json.dumps(data, separators=(",", ":"))
        assert "name" in data and isinstance(data.get("age", 0), int)
        prompt = prompt_messages(e)[-1]["content"]
        for key, value in data.items():
            assert key in prompt and str(value) in prompt


@pytest.mark.parametrize(("skill", "pattern"), [
    ("multiple_choice", r"[ABCD]"), ("yes_no", r"Yes|No"), ("judge", r"\[\[[AB]\]\]"),
])
def test_short_answers_have_their_form_and_are_balanced(skill, pattern):
    answers = [e.answer for e in generate(11, 300, skills=(skill,))]
    assert all(re.fullmatch(pattern, a) for a in answers)
    counts = Counter(answers)
    assert min(counts.values()) > 0.5 * max(counts.values())


@pytest.mark.parametrize("skill", ["multiple_choice", "judge"])
def test_reasoned_replies_state_the_fact_naming_the_right_option(skill):
    for e in generate(13, 200, skills=(skill,)):
        reply = e.messages[-1]["content"]
        fact = reply[: reply.rindex("The answer is" if skill == "multiple_choice" else "[[")]
        assert fact.strip().endswith(".") and (fact[0].isupper() or fact[0].isdigit())
        prompt = prompt_messages(e)[-1]["content"]
        if skill == "multiple_choice":  # the fact names the text of the chosen option
            option = next(line for line in prompt.splitlines()
                          if re.match(rf"\(?{e.answer}[).:]", line))
            assert option.split(maxsplit=1)[1].lower() in fact.lower()
    assert final_answer(skill, "no verdict here") == ""
