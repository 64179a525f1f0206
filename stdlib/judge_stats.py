"""Statistics over LLM-as-a-judge verdicts (MT-bench): agreement with human labels, the
consistency of position-swapped pairs, position bias, win rates; and FastChat's parse rules
for judges that write free text.

A swapped pair is the `judge.PairVerdict` value of `judge.pairwise_swap` (a dict from SGL,
or a `SwapPair`): `first` is the verdict with answer 1 shown as A, `second` the verdict
with answer 2 shown as A, each "A", "B" or "C" (a tie).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERDICTS = ("A", "B", "C")
OUTCOMES = ("model_1", "model_2", "tie")


@dataclass(frozen=True)
class SwapPair:
    """One comparison judged in both orders."""

    first: str   # answer 1 shown as A
    second: str  # answer 2 shown as A

    def __post_init__(self) -> None:
        for name in ("first", "second"):
            if getattr(self, name) not in VERDICTS:
                raise ValueError(f"SwapPair.{name} must be one of {VERDICTS}, "
                                 f"got {getattr(self, name)!r}")

    @classmethod
    def of(cls, value: SwapPair | Mapping[str, Any]) -> SwapPair:
        return value if isinstance(value, SwapPair) else cls(value["first"], value["second"])

    @property
    def first_outcome(self) -> str:
        return {"A": "model_1", "B": "model_2", "C": "tie"}[self.first]

    @property
    def second_outcome(self) -> str:
        return {"A": "model_2", "B": "model_1", "C": "tie"}[self.second]

    @property
    def is_consistent(self) -> bool:
        return self.first_outcome == self.second_outcome

    @property
    def outcome(self) -> str:
        """MT-bench's rule: the winner if both orders agree, else a tie."""
        return self.first_outcome if self.is_consistent else "tie"


Pair = SwapPair | Mapping[str, Any]


@dataclass(frozen=True)
class Agreement:
    rate: float
    num_items: int


def agreement(judge: Sequence[Hashable], human: Sequence[Hashable], *,
              include_ties: bool = True, tie: Hashable = "tie") -> Agreement:
    """How often the judge's label equals the human's. `include_ties=False` keeps only the
    items where neither says `tie` (MT-bench's "S2" setup; random agreement is then 50%)."""
    if len(judge) != len(human):
        raise ValueError(f"agreement needs as many judge labels as human labels, "
                         f"got {len(judge)} and {len(human)}")
    pairs = [(j, h) for j, h in zip(judge, human, strict=True)
             if include_ties or (j != tie and h != tie)]
    if not pairs:
        return Agreement(float("nan"), 0)
    return Agreement(sum(j == h for j, h in pairs) / len(pairs), len(pairs))


def consistency_rate(pairs: Sequence[Pair]) -> float:
    """The share of swapped pairs whose two orders name the same winner (or both a tie)."""
    if not pairs:
        return float("nan")
    return sum(SwapPair.of(p).is_consistent for p in pairs) / len(pairs)


@dataclass(frozen=True)
class PositionBias:
    """Shares of swapped pairs (MT-bench Table 2): consistent; the same position won both
    times (first: "A" twice, second: "B" twice); anything else (one order a tie)."""

    consistent: float
    biased_first: float
    biased_second: float
    other: float
    num_pairs: int


def position_bias(pairs: Sequence[Pair]) -> PositionBias:
    swaps = [SwapPair.of(p) for p in pairs]
    n = len(swaps)
    if n == 0:
        nan = float("nan")
        return PositionBias(nan, nan, nan, nan, 0)
    consistent = sum(s.is_consistent for s in swaps)
    first = sum(s.first == s.second == "A" for s in swaps)
    second = sum(s.first == s.second == "B" for s in swaps)
    return PositionBias(consistent / n, first / n, second / n,
                        (n - consistent - first - second) / n, n)


@dataclass(frozen=True)
class WinRate:
    wins: int
    losses: int
    ties: int

    @property
    def win_rate(self) -> float:
        return self.wins / self.total if self.total else float("nan")

    @property
    def adjusted(self) -> float:
        """(wins + ties / 2) / total, FastChat's `win_rate_adjusted`."""
        return (self.wins + 0.5 * self.ties) / self.total if self.total else float("nan")

    @property
    def total(self) -> int:
        return self.wins + self.losses + self.ties


def win_rate(pairs: Sequence[Pair]) -> WinRate:
    """Model 1's record over swapped pairs; an inconsistent pair counts as a tie."""
    outcomes = [SwapPair.of(p).outcome for p in pairs]
    return WinRate(outcomes.count("model_1"), outcomes.count("model_2"), outcomes.count("tie"))


# -- FastChat's parsing of free-text verdicts (for judges run without constraints) -------------
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_FALLBACK = re.compile(r"\[(\d+\.?\d*)\]")


def parse_rating(text: str) -> float | None:
    """`[[7]]` (else `[7]`) anywhere in the text, as FastChat reads a single-answer grade;
    None where FastChat would record -1."""
    match = _RATING.search(text) or _RATING_FALLBACK.search(text)
    return float(match.group(1)) if match else None


def parse_pair(text: str) -> str | None:
    """"A", "B" or "C" by FastChat's check order ("[[A]]" first, so a text with both
    "[[A]]" and "[[B]]" counts as A); None where FastChat records an error."""
    for verdict in VERDICTS:
        if f"[[{verdict}]]" in text:
            return verdict
    return None


__all__ = ["OUTCOMES", "VERDICTS", "Agreement", "PositionBias", "SwapPair", "WinRate",
           "agreement", "consistency_rate", "parse_pair", "parse_rating", "position_bias",
           "win_rate"]
