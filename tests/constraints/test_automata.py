"""Character automata (`sglc.constraints.automata`) against Python's `re`, by brute force
over short texts: boolean operations, examples, lengths, regexes back out."""

from __future__ import annotations

import re

from hypothesis import given, settings
from regex_strategies import MAX_LEN, TEXTS, language, regexes

from sglc.constraints.automata import Dfa


@settings(max_examples=40, deadline=None)
@given(regexes(), regexes())
def test_boolean_operations_agree_with_re(r: str, s: str) -> None:
    a, b = Dfa.of(r), Dfa.of(s)
    both, either, minus = a & b, a | b, a - b
    lr, ls = language(r), language(s)
    for t in TEXTS:
        assert a.accepts(t) == (t in lr)
        assert both.accepts(t) == (t in lr and t in ls)
        assert either.accepts(t) == (t in lr or t in ls)
        assert minus.accepts(t) == (t in lr and t not in ls)
    example = minus.example()
    if example is not None:
        assert re.fullmatch(r, example) and not re.fullmatch(s, example)
        shorter = [t for t in lr - ls if len(t) < len(example)]
        assert not shorter  # a shortest counterexample
    elif len(example or "") <= MAX_LEN:
        assert not lr - ls


@settings(max_examples=40, deadline=None)
@given(regexes())
def test_to_regex_and_max_len(r: str) -> None:
    a = Dfa.of(r)
    back = a.to_regex()
    assert Dfa.of(back).equivalent(a)
    short = [t for t in TEXTS if len(t) <= 5]  # re may backtrack hard on long texts
    assert [t for t in short if re.fullmatch(back, t)] == [t for t in short if re.fullmatch(r, t)]
    longest = a.max_len()
    if longest is not None and longest <= MAX_LEN:
        assert longest == max(len(t) for t in language(r))
    else:
        assert not a.is_empty()


def test_unicode_classes_mean_what_python_means() -> None:
    word = Dfa.of(r"\w+")
    for text in ["été", "x_1", "日本", "a b", "", "-"]:
        assert word.accepts(text) == (re.fullmatch(r"\w+", text) is not None)
    assert (~Dfa.of(r"[\s\S]*")).is_empty()
    assert Dfa.of(r"[\s\S]{0,3}").to_regex() and Dfa.of("x{2,}").max_len() is None


def test_completion_bytes_counts_the_longest_shortest_path() -> None:
    assert Dfa.of("abc").completion_bytes() == 3
    assert Dfa.of("a{1,5}").completion_bytes() == 5
    assert Dfa.of("é").completion_bytes() == 2  # UTF-8 bytes
    assert Dfa.of("a+").completion_bytes() == 1
