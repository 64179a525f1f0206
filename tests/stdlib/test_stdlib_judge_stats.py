"""judge_stats: the swap rule, consistency, position bias, win rates, agreement, and
FastChat's free-text parse rules."""

from __future__ import annotations

import math

import pytest

from sglc.stdlib import judge_stats as js


def test_swap_rule_maps_both_orders_to_models():
    assert js.SwapPair("A", "B").outcome == "model_1"      # 1 wins as A, 1 wins as B
    assert js.SwapPair("B", "A").outcome == "model_2"
    assert js.SwapPair("A", "A").outcome == "tie"          # position won both times
    assert not js.SwapPair("A", "C").is_consistent
    assert js.SwapPair("C", "C").is_consistent
    with pytest.raises(ValueError, match="first must be one of"):
        js.SwapPair("D", "A")


def test_position_bias_shares_sum_to_one():
    pairs = [js.SwapPair(*p) for p in ["AB", "BA", "AA", "AA", "BB", "AC", "CC", "CB"]]
    bias = js.position_bias(pairs)
    assert (bias.consistent, bias.biased_first, bias.biased_second, bias.other) == \
        (3 / 8, 2 / 8, 1 / 8, 2 / 8)
    assert js.consistency_rate([{"first": "A", "second": "B"}, {"first": "A", "second": "A"}]) == 0.5


def test_win_rate_counts_inconsistent_pairs_as_ties():
    record = js.win_rate([js.SwapPair(*p) for p in ["AB", "AB", "BA", "AA"]])
    assert record == js.WinRate(2, 1, 1)
    assert record.win_rate == 0.5 and record.adjusted == 2.5 / 4


def test_agreement():
    assert js.agreement(["a", "tie", "b"], ["a", "b", "b"]) == js.Agreement(2 / 3, 3)
    assert js.agreement(["a", "tie", "b"], ["a", "b", "b"], include_ties=False) == \
        js.Agreement(1.0, 2)
    assert math.isnan(js.agreement(["tie"], ["a"], include_ties=False).rate)
    with pytest.raises(ValueError, match="as many"):
        js.agreement(["a"], [])


def test_fastchat_parse_rules():
    assert js.parse_rating("Good. Rating: [[8]]") == 8.0
    assert js.parse_rating("Rating: [7.5]") == 7.5           # the fallback pattern
    assert js.parse_rating("no score") is None
    assert js.parse_pair("[[B]] but also [[A]]") == "A"      # FastChat checks A first
    assert js.parse_pair("[[C]]") == "C" and js.parse_pair("A") is None
