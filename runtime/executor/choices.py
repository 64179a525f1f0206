"""How a `select` ranks and picks its options, by `choices_method` (sglc.lang.select_params):
the scores it compares, the index of the best, and a sampled pick with a temperature."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from sglc.runtime.executor.errors import GenError


def option_scores(method: str, scores: Sequence[Any],
                  unconditional: Sequence[Any] | None = None) -> list[float]:
    """What the method compares, one number per option (higher is better). `scores` are the
    options' `OptionScore`s after the prompt; `unconditional` theirs without it."""
    if method == "token_length_normalized":
        return [float(s.normalized) for s in scores]
    if method == "unconditional_likelihood_normalized":
        if unconditional is None:
            raise ValueError("unconditional scores are missing")
        return [(s.logprob - u.logprob) / max(s.num_tokens, 1)
                for s, u in zip(scores, unconditional, strict=True)]
    if method == "greedy_token_selection":
        return [float(s.normalized) for s in scores]  # what meta shows; the pick is greedy
    if method == "logprob":  # the sum, unnormalized (Interpreter(normalized_select=False))
        return [float(s.logprob) for s in scores]
    raise ValueError(f"unknown choices_method {method!r}")


def best_option(method: str, scores: Sequence[Any], ranked: Sequence[float]) -> int:
    """The index of the best option (the first on ties)."""
    if method == "greedy_token_selection":
        return greedy_token_pick([token_logprobs(s) for s in scores])
    return max(range(len(ranked)), key=lambda i: (ranked[i], -i))


def greedy_token_pick(options: Sequence[Sequence[float]]) -> int:
    """Token by token, keep the options whose logprob at that position is the highest, until
    one is left (a shorter option continues with its mean logprob); the first of the rest."""
    longest = max((len(o) for o in options), default=0)
    padded = [list(o) + [_mean(o)] * (longest - len(o)) for o in options]
    alive = list(range(len(options)))
    for pos in range(longest):
        top = max(padded[i][pos] for i in alive)
        alive = [i for i in alive if padded[i][pos] == top]
        if len(alive) == 1:
            break
    return alive[0]


def sample_option(ranked: Sequence[float], temperature: float, seed: int | None) -> int:
    """An index drawn with probability proportional to exp(score / temperature)."""
    top = max(ranked)
    weights = [math.exp((r - top) / temperature) for r in ranked]
    return random.Random(seed).choices(range(len(ranked)), weights=weights)[0]


def token_logprobs(score: Any) -> list[float]:
    values = getattr(score, "token_logprobs", None)
    if values is None:
        raise GenError("choices_method greedy_token_selection needs each option's per-token "
                       "scores, which this model client does not give")
    return [float(v) for v in values]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("-inf")


__all__ = ["best_option", "greedy_token_pick", "option_scores", "sample_option",
           "token_logprobs"]
