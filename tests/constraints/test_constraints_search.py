"""Searching a growing text for a dialect pattern (stop regexes): the same matches as Python's
`re` finds by brute force, fed in any chunks, in linear time."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sglc.constraints import ConstraintError
from sglc.constraints.search import MAX_SEARCH_STATES, SearchPatterns, compile_search

PATTERNS = [r"\d+", r"a.*b", r"(ab|a)c", r"x{2,3}", r"(a|b)*c", r"\n\n", r"[^a-z]+!",
            r"(?:foo|bar)baz?", r"é\w", r"a{0,2}b", r"(a+)+b", r"\s+[A-Z]", r"[\s\S]{3}"]


def first_match(pattern: str, text: str) -> tuple[int, int] | None:
    """Brute force: the match that ends first, and of those the leftmost (re.fullmatch)."""
    regex = re.compile(pattern)
    for end in range(1, len(text) + 1):
        for start in range(end):
            if regex.fullmatch(text, start, end):
                return start, end
    return None


@settings(max_examples=300, deadline=None)
@given(pattern=st.sampled_from(PATTERNS), text=st.text("abcxfor12 \n!Aé", max_size=16),
       cuts=st.lists(st.integers(0, 16)))
def test_fed_in_chunks_it_finds_what_python_re_finds(pattern, text, cuts) -> None:
    searcher = compile_search(pattern).searcher()
    found = None
    for end in sorted({c for c in cuts if c < len(text)} | {len(text)}):
        found = searcher.feed(text[:end])
        if found is not None:
            break
    assert found == first_match(pattern, text)


def test_a_start_position_skips_the_text_before_it() -> None:
    searcher = compile_search(" ").searcher(1)
    assert searcher.feed(" 84 is") == (3, 4)


def test_safe_len_is_where_a_partial_match_starts() -> None:
    searcher = compile_search("</end>").searcher()
    assert searcher.feed("abc</e") is None and searcher.safe_len == 3
    assert searcher.feed("abc</ex") is None and searcher.safe_len == 7


def test_no_backtracking_blowup() -> None:
    searcher = compile_search(r"(a+)+b").searcher()
    start = time.perf_counter()
    assert searcher.feed("a" * 20000 + "c") is None
    assert time.perf_counter() - start < 2.0  # Python's re needs ages for 30 a's


@pytest.mark.parametrize(("pattern", "message", "position"), [
    ("a*", "matches the empty text", 0),
    ("^ab", "anchors are not supported", 0),
    ("ab$", "anchors are not supported", 2),
    ("a(?=b)", "lookaround", 1),
    ("(a", "invalid regex", 0),
    ("(?i)a", "inline flags", 0),
    ("(?:a{1000}){100}", f"more than {MAX_SEARCH_STATES} states", None),
])
def test_patterns_that_cannot_be_searched(pattern, message, position) -> None:
    with pytest.raises(ConstraintError) as info:
        compile_search(pattern)
    assert message in str(info.value)
    assert info.value.position == position


def test_the_rule_words_the_error_with_the_parameter_and_pattern() -> None:
    rule = SearchPatterns()
    assert rule.error("stop_regex", [r"\n\n", "[0-9]+"]) is None
    assert rule.error("stop_regex", "x*") == (
        "stop_regex 'x*': the regex matches the empty text, so it would stop at once "
        "(position 0); make it match at least one character")
    assert rule.error("stop_regex", [3]) == (
        "stop_regex must be a non-empty string or a list of non-empty strings, got [3]")
