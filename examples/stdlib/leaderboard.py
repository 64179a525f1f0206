"""An arena on the default model: three players (sampling settings), every pair judged in
both orders, then Bradley-Terry and Elo leaderboards with bootstrap CIs.

    python examples/stdlib/leaderboard.py        # Player(name, Runtime(model_path=...)) for real models
"""

from __future__ import annotations

import sglc
from sglc.stdlib.battles import ArenaResult, Player, play
from sglc.stdlib.ratings import format_leaderboard, leaderboard

QUESTIONS = ["What is 12*7?", "What is the capital of Italy?", "Can an eagle fly?",
             "What is 45+17?", "Is Oslo the capital of Egypt?", "Describe a cat in one sentence."]


def main(runtime: sglc.Runtime | None = None, **defaults: object) -> ArenaResult:
    runtime = runtime or sglc.Runtime()
    players = [Player("greedy", runtime, dict(defaults)),
               Player("hot", runtime, {**defaults, "temperature": 1.2, "seed": 1}),
               Player("terse", runtime, {**defaults, "max_tokens": 3})]
    result = play(QUESTIONS, players, judge_runtime=runtime)
    for method in ("bt", "elo"):
        print(f"{method}:")
        print(format_leaderboard(leaderboard(result.battles, method=method, num_rounds=50)))
    return result


if __name__ == "__main__":
    main()
