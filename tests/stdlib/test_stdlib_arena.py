"""stdlib arena: battles between players judged in both orders, then rated; on the default
model (two sampling settings as two players) and on scripted players and judge (exact)."""

from __future__ import annotations

import pytest
from scripted import ScriptedClient, last_user_turn

import sglc
from sglc.stdlib import ratings
from sglc.stdlib.battles import Player, play

QUESTIONS = ["What is 2+3?", "Capital of Italy?", "Largest planet?"]
RIGHT = {"What is 2+3?": "5", "Capital of Italy?": "Rome", "Largest planet?": "Jupiter"}


def test_battles_on_the_default_model(runtime):
    players = [Player("greedy", runtime), Player("hot", runtime, {"temperature": 1.0, "seed": 3})]
    result = play(QUESTIONS[:2], players, judge_runtime=runtime)
    assert [len(a) for a in result.answers.values()] == [2, 2]
    assert [(b.model_a, b.model_b) for b in result.battles] == [("greedy", "hot")] * 2
    assert all(b.winner in ratings.WINNERS for b in result.battles)


def player(answers: dict[str, str]) -> sglc.Runtime:
    return sglc.Runtime(client=ScriptedClient(
        lambda prompt, params, i: answers[last_user_turn(prompt)]))


def test_scripted_arena_rates_the_right_player_first():
    def verdict(prompt: str, params, i: int) -> str:
        if params.regex is None and not params.choices:
            return "Checked. [["
        turn = last_user_turn(prompt)
        question = turn.split("[User Question]\n", 1)[1].split("\n", 1)[0]
        shown_a = turn.split("Assistant A's Answer]\n", 1)[1].split("\n", 1)[0]
        shown_b = turn.split("Assistant B's Answer]\n", 1)[1].split("\n", 1)[0]
        if shown_a == RIGHT[question] == shown_b:
            return "C"
        return "A" if shown_a == RIGHT[question] else "B" if shown_b == RIGHT[question] else "C"

    players = [Player("right", player(RIGHT)),
               Player("wrong", player(dict.fromkeys(RIGHT, "no idea"))),
               Player("half", player({**RIGHT, "Largest planet?": "Mars"}))]
    result = play(QUESTIONS, players, judge_runtime=sglc.Runtime(client=ScriptedClient(verdict)))
    winners = [(b.model_a, b.model_b, b.winner) for b in result.battles]
    assert winners == [("right", "wrong", "model_a")] * 3 + \
        [("right", "half", "tie")] * 2 + [("right", "half", "model_a")] + \
        [("wrong", "half", "model_b")] * 2 + [("wrong", "half", "tie")]
    assert all(m.verdict["consistent"] for m in result.matches)
    rows = ratings.leaderboard(result.battles, num_rounds=10)
    assert [r.model for r in rows] == ["right", "half", "wrong"]
    with pytest.raises(ValueError, match="distinct names"):
        play(QUESTIONS, [players[0], players[0]])
