"""Arena ratings against known results: Bradley-Terry recovers the strengths that generated
a battle set, matches the two-player closed form; Elo's invariants; bootstrap and ranks."""

from __future__ import annotations

import itertools
import math

import pytest

from sglc.stdlib import ratings as R


def battles_from(strengths: dict[str, float], per_pair: int) -> list[R.Battle]:
    """For each pair, `per_pair` battles split exactly by the BT win probability (rounded):
    the MLE of this set is (up to the rounding) the generating ratings."""
    out = []
    for a, b in itertools.combinations(sorted(strengths), 2):
        p = 1 / (1 + 10 ** ((strengths[b] - strengths[a]) / 400))
        wins = round(per_pair * p)
        out += [R.Battle(a, b, "model_a")] * wins + [R.Battle(a, b, "model_b")] * (per_pair - wins)
    return out


STRENGTHS = {"alpha": 1250.0, "beta": 1100.0, "gamma": 1000.0, "delta": 650.0}


def test_bt_recovers_the_generating_strengths():
    fitted = R.bt_ratings(battles_from(STRENGTHS, per_pair=2000))
    mean = sum(STRENGTHS.values()) / len(STRENGTHS)
    for model, strength in STRENGTHS.items():
        assert fitted[model] - 1000 == pytest.approx(strength - mean, abs=1.0)
    assert sum(fitted.values()) / len(fitted) == pytest.approx(1000.0)


def test_bt_two_players_closed_form_and_ties_as_halves():
    battles = [R.Battle("a", "b", "model_a")] * 30 + [R.Battle("b", "a", "model_a")] * 10
    fitted = R.bt_ratings(battles)
    assert fitted["a"] - fitted["b"] == pytest.approx(400 * math.log10(3), abs=1e-3)
    # two ties are one win and one loss: equal ratings
    tied = R.bt_ratings([R.Battle("a", "b", "tie")] * 2)
    assert tied["a"] == pytest.approx(tied["b"], abs=1e-6)
    with_ties = R.bt_ratings(battles + [R.Battle("a", "b", "tie")] * 20)
    assert with_ties["a"] - with_ties["b"] == pytest.approx(400 * math.log10(40 / 20), abs=1e-3)


def test_bt_refuses_unconnected_groups_and_l2_keeps_an_unbeaten_model_finite():
    with pytest.raises(ValueError, match="2 unconnected groups"):
        R.bt_ratings([R.Battle("a", "b", "tie"), R.Battle("c", "d", "tie")])
    unbeaten = [R.Battle("a", "b", "model_a")] * 5
    assert R.bt_ratings(unbeaten, l2=0.1)["a"] > R.bt_ratings(unbeaten, l2=1.0)["a"] > 1000


def test_elo_invariants():
    assert R.elo_ratings([R.Battle("a", "b", "model_a")]) == {"a": 1002.0, "b": 998.0}
    battles = battles_from(STRENGTHS, per_pair=20)
    elo = R.elo_ratings(battles, k=16)
    assert sum(elo.values()) == pytest.approx(1000.0 * len(elo))        # zero-sum
    mirrored = [R.Battle(b.model_b, b.model_a, {"model_a": "model_b", "model_b": "model_a",
                                                  "tie": "tie"}[b.winner]) for b in battles]
    assert R.elo_ratings(mirrored, k=16) == pytest.approx(elo)           # sides don't matter
    tie = R.elo_ratings([R.Battle("a", "b", "tie")])
    assert tie == {"a": 1000.0, "b": 1000.0}
    # order matters for Elo (not for BT): a late loss costs more than an early one
    seq = [R.Battle("a", "b", "model_a")] * 10
    assert R.elo_ratings(seq + [R.Battle("a", "b", "model_b")])["a"] != \
        R.elo_ratings([R.Battle("a", "b", "model_b")] + seq)["a"]


def test_bootstrap_and_leaderboard_ranks():
    battles = battles_from(STRENGTHS, per_pair=60)
    ci = R.bootstrap(battles, num_rounds=20, seed=1)
    assert ci == R.bootstrap(battles, num_rounds=20, seed=1)             # seeded
    point = R.bt_ratings(battles)
    for m, interval in ci.items():
        assert interval.lower <= point[m] <= interval.upper
    rows = R.leaderboard(battles, num_rounds=20)
    assert [r.model for r in rows] == ["alpha", "beta", "gamma", "delta"]
    assert all(r.num_battles == 180 for r in rows)
    # delta is far below everyone: its rank counts every model whose lower bound is above it
    assert rows[-1].rank == 4 and rows[0].rank == 1
    table = R.format_leaderboard(rows)
    assert table.splitlines()[2].startswith("| 1 | alpha |")
    assert [r.model for r in R.leaderboard(battles, method="elo", num_rounds=5)][-1] == "delta"
    with pytest.raises(ValueError, match="method must be one of"):
        R.leaderboard(battles, method="glicko")


def test_battle_validation():
    with pytest.raises(ValueError, match="winner must be one of"):
        R.Battle("a", "b", "a")
    with pytest.raises(ValueError, match="two different models"):
        R.Battle("a", "a", "tie")
