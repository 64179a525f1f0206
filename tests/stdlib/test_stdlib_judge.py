"""stdlib judge: MT-bench grading and position-swapped pairwise verdicts, on the default model
(structure and types) and on a scripted judge (the statistics come out exact)."""

from __future__ import annotations

import pytest
from scripted import ScriptedClient, last_user_turn

import sglc
from sglc.stdlib import judge_stats as js
from sglc.stdlib.loader import load


@pytest.fixture(scope="module")
def judge():
    return load("judge")


# -- the default model: the verdicts are well-typed whatever the model writes ---------------------
def test_grade_on_the_default_model_is_a_typed_rating(judge, runtime):
    rating = judge.grade("What is the capital of Italy?", "Rome", runtime=runtime, max_tokens=12)
    assert set(rating) == {"score", "explanation"}
    assert isinstance(rating["score"], int) and 1 <= rating["score"] <= 10
    assert isinstance(rating["explanation"], str)


def test_pairwise_on_the_default_model_follows_the_swap_rule(judge, runtime):
    for reference in ("", "5"):
        verdict = judge.pairwise("What is 2+3?", "5", "6", reference, runtime=runtime,
                                 max_tokens=12)
        pair = js.SwapPair.of(verdict)
        assert verdict["winner"] == pair.outcome
        assert verdict["consistent"] is pair.is_consistent


# -- a scripted judge: exact statistics --------------------------------------------------------------
def _shown_a(prompt: str) -> str:
    turn = last_user_turn(prompt)
    return turn.split("[The Start of Assistant A's Answer]\n", 1)[1].split("\n", 1)[0]


def truthful(right: set[str]):
    """Explains, then names the position that shows a right answer (A if neither)."""
    def reply(prompt: str, params, i: int) -> str:
        if params.regex is None and not params.choices:
            return "I compared both answers. [[X]]"
        return "A" if _shown_a(prompt) in right or not right else "B"
    return reply


def always(verdict: str):
    return lambda prompt, params, i: verdict if params.regex or params.choices else "Hm. "


def test_a_truthful_judge_is_consistent_and_picks_the_right_answer(judge):
    client = ScriptedClient(truthful({"Rome", "5"}))
    rt = sglc.Runtime(client=client)
    pairs = [judge.pairwise("Capital of Italy?", "Rome", "Paris", runtime=rt),
             judge.pairwise("2+3?", "6", "5", runtime=rt)]
    assert [p["winner"] for p in pairs] == ["model_1", "model_2"]
    assert js.consistency_rate(pairs) == 1.0
    assert js.win_rate(pairs) == js.WinRate(wins=1, losses=1, ties=0)
    # both orders were asked: answer 1 shown first, then answer 2 shown first
    shown = [_shown_a(p) for p in client.prompts if "[[" not in p.rsplit("assistant\n", 1)[-1]]
    assert sorted(shown) == ["5", "6", "Paris", "Rome"]


def test_a_judge_that_always_says_a_is_all_position_bias(judge):
    rt = sglc.Runtime(client=ScriptedClient(always("A")))
    pairs = [judge.pairwise("Q?", "x", "y", runtime=rt) for _ in range(3)]
    assert all(p == {"winner": "tie", "first": "A", "second": "A", "consistent": False}
               for p in pairs)
    bias = js.position_bias(pairs)
    assert (bias.consistent, bias.biased_first, bias.biased_second) == (0.0, 1.0, 0.0)
    assert js.win_rate(pairs).adjusted == 0.5


def test_two_ties_are_consistent(judge):
    rt = sglc.Runtime(client=ScriptedClient(always("C")))
    verdict = judge.pairwise("Q?", "x", "y", runtime=rt)
    assert verdict == {"winner": "tie", "first": "C", "second": "C", "consistent": True}


def test_grade_reads_the_constrained_score_and_shows_the_reference(judge):
    def reply(prompt: str, params, i: int) -> str:
        return "7" if params.regex else "Correct and clear. Rating: [[7]]"
    client = ScriptedClient(reply)
    rt = sglc.Runtime(client=client)
    rating = judge.grade("2+3?", "5", "5", runtime=rt)
    assert rating == {"score": 7, "explanation": "Correct and clear."}
    assert "[The Start of Reference Answer]\n5\n" in client.prompts[0]
    judge.grade("2+3?", "5", runtime=rt)
    assert "Reference Answer" not in client.prompts[-1]


def test_agreement_with_human_labels_with_and_without_ties(judge):
    rt = sglc.Runtime(client=ScriptedClient(truthful({"Rome", "Oslo"})))
    questions = [("Capital of Italy?", "Rome", "Paris"), ("Capital of Norway?", "Lima", "Oslo"),
                 ("Best color?", "red", "blue")]
    judged = [judge.pairwise(q, a, b, runtime=rt)["winner"] for q, a, b in questions]
    # the third pair has no right answer: A both times, inconsistent, so a tie
    assert judged == ["model_1", "model_2", "tie"]
    human = ["model_1", "model_1", "model_2"]
    assert js.agreement(judged, human) == js.Agreement(1 / 3, 3)
    assert js.agreement(judged, human, include_ties=False) == js.Agreement(0.5, 2)
