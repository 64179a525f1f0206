"""Arena battles from Python: players answer questions, a judge compares every pair.

    players = [Player("engine-a", Runtime(model_path=A)), Player("engine-b", Runtime(endpoint=B)),
               Player("default-hot", defaults={"temperature": 1.0})]
    result = play(questions, players, judge_runtime=judge_rt)
    print(format_leaderboard(leaderboard(result.battles)))

Each player answers every question once (`arena.answer`, batched on its runtime); every
pair of players then gets one position-swapped verdict per question (`arena.battle`, on the
judge's runtime). A verdict becomes a `ratings.Battle`: model_a is the pair's first player.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sglc.runtime.backends import Runtime
from sglc.stdlib.loader import load
from sglc.stdlib.ratings import Battle

_WINNER = {"model_1": "model_a", "model_2": "model_b", "tie": "tie"}


@dataclass(frozen=True)
class Player:
    """A named model: where it runs (None: the default model) and its gen defaults."""

    name: str
    runtime: Runtime | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """One judged comparison: the battle, the question, both answers, the judge's verdict."""

    battle: Battle
    question: str
    answer_a: str
    answer_b: str
    verdict: Mapping[str, Any]


@dataclass(frozen=True)
class ArenaResult:
    answers: dict[str, list[str]]  # player -> one answer per question
    matches: list[Match]

    @property
    def battles(self) -> list[Battle]:
        return [m.battle for m in self.matches]


def to_battle(model_1: str, model_2: str, verdict: Mapping[str, Any]) -> Battle:
    """A `judge.PairVerdict` as a battle (model_1 is model_a)."""
    return Battle(model_1, model_2, _WINNER[verdict["winner"]])


def play(questions: Sequence[str], players: Sequence[Player], *,
         judge_runtime: Runtime | None = None) -> ArenaResult:
    names = [p.name for p in players]
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"play needs at least two players with distinct names, got {names}")
    prog = load("arena")
    answers = {p.name: prog.answer.batch(list(questions), runtime=p.runtime, **p.defaults)
               for p in players}
    jobs = [(a, b, i) for a, b in itertools.combinations(names, 2) for i in range(len(questions))]
    verdicts = prog.battle.batch([(questions[i], answers[a][i], answers[b][i]) for a, b, i in jobs],
                                 runtime=judge_runtime)
    matches = [Match(to_battle(a, b, v), questions[i], answers[a][i], answers[b][i], v)
               for (a, b, i), v in zip(jobs, verdicts, strict=True)]
    return ArenaResult(answers, matches)


__all__ = ["ArenaResult", "Match", "Player", "play", "to_battle"]
