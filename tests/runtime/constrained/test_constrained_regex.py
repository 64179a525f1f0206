"""The Index form of canonical regexes against real outlines-core automata: parity with
`re.fullmatch` (walking an `Index` over a character-level vocabulary, as the engine does) and
the outlines-core 0.2.14 pitfalls it guards against. The constraint language itself is tested
in tests/constraints/."""

from __future__ import annotations

import json
import re
import time
import warnings
from functools import cache

import outlines_core
import pytest
from constraints.schema_cases import ALPHABET, SCHEMAS, texts_matching
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sglc.constraints import (
    BOOL_REGEX,
    FLOAT_REGEX,
    INT_REGEX,
    ConstraintError,
    index_form,
    index_regex,
    regex_for_schema,
)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # [[:alpha:]] reads as [[:alph]]

# A character-level vocabulary: every character of the test alphabet one token.
EOS = 10_000
TOKEN = {ch: i for i, ch in enumerate(ALPHABET)}
VOCAB = outlines_core.Vocabulary(EOS, {ch: [i] for ch, i in TOKEN.items()})
# derandomize: the generic-JSON regexes are thousands of characters, and on some random
# texts Python's backtracking `re` (the reference) runs for minutes; fixed examples keep CI's
# time fixed
FAST = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@cache
def _index(regex: str) -> outlines_core.Index:
    return outlines_core.Index(regex, VOCAB)


def _walk(index: outlines_core.Index, text: str) -> bool:
    state = index.get_initial_state()
    for ch in text:
        state = index.get_next_state(state, TOKEN[ch])
        if state is None:
            return False
    return index.is_final_state(state)


def automaton_accepts(pattern: str, text: str) -> bool:
    """What the engine's automaton for `pattern` accepts (empty text: the IndexForm flag)."""
    form = index_form(pattern)
    if text == "":
        return form.accepts_empty
    return form.regex is not None and _walk(_index(form.regex), text)


def fullmatch(pattern: str, text: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.fullmatch(pattern, text) is not None


# -- the pitfall, pinned ----------------------------------------------------------------------

def test_outlines_core_index_without_a_trailing_dollar_drops_continuations() -> None:
    """0.2.14: a prefix that is itself a match kills every continuation that is not one."""
    assert _walk(_index(r"[0-9]+(\.[0-9]+)?"), "1")
    assert not _walk(_index(r"[0-9]+(\.[0-9]+)?"), "1.5")
    assert not _walk(_index("(yes|yesterday)"), "yesterday")
    assert _walk(_index(r"(?:[0-9]+(\.[0-9]+)?)$"), "1.5")
    assert _walk(_index("(?:yes|yesterday)$"), "yesterday")
    # an empty alternative matches at once and kills everything else, with or without $
    assert not _walk(_index("(?:(?:yes|yesterday)$|)"), "yes")


@pytest.mark.parametrize("regex", ["^(yes|yesterday)", "^a$", "a*$", "(?:|a)$", r"\Aabc"])
def test_outlines_core_index_has_no_start_state_for_anchors_or_nullable_dollar(regex) -> None:
    with pytest.raises(ValueError, match="universal start state"):
        outlines_core.Index(regex, VOCAB)


def test_the_index_form_of_pitfall_regexes() -> None:
    assert index_regex(r"[0-9]+(\.[0-9]+)?").endswith(")$")
    for pattern, text in [(r"[0-9]+(\.[0-9]+)?", "1.5"), ("(yes|yesterday)", "yesterday"),
                          ("^(yes|yesterday)$", "yesterday"), ("a*", "aaa")]:
        assert automaton_accepts(pattern, text), (pattern, text)
    assert index_form("a*").accepts_empty and not index_form("a+").accepts_empty
    assert index_form("") == index_form("a{0}") and index_form("").regex is None
    with pytest.raises(ConstraintError, match="only the empty text"):
        index_regex("(?:)")


def test_multi_character_tokens_walk_the_index_form() -> None:
    tokens = {"yes": [0], "ter": [1], "day": [2], "1": [4], ".": [5], "5": [6],
              "1.": [7]}
    index = outlines_core.Index(index_regex("(yes|yesterday)|[0-9]+(\\.[0-9]+)?"),
                                outlines_core.Vocabulary(99, tokens))
    for ids, ok in [([0], True), ([0, 1, 2], True), ([0, 1], False), ([7, 6], True),
                    ([4, 5, 6], True), ([7], False)]:
        state = index.get_initial_state()
        for token_id in ids:
            state = index.get_next_state(state, token_id)
        assert (state is not None and index.is_final_state(state)) == ok, ids


def test_any_json_index_builds_quickly() -> None:
    """With one $ after the whole any-JSON regex, regex-automata needs over 30 s."""
    start = time.perf_counter()
    regex = index_form(regex_for_schema({})).regex
    assert regex is not None and not regex.endswith(")$")
    assert _walk(_index(regex), '{"a":[1,{"b":null}],"c":-2.5e+3}')
    assert time.perf_counter() - start < 10


# -- parity: the automaton accepts exactly what re.fullmatch accepts ----------------------------

PARITY = [
    r"[0-9]+(\.[0-9]+)?", "(yes|yesterday)", "^(yes|yesterday)$", "a*", INT_REGEX, FLOAT_REGEX,
    BOOL_REGEX, r"\d{2,4}-\w+", r"[A-Za-z_][A-Za-z0-9_]*", "(?:ab|cd)*e?", ".{0,3}",
    r"[^a-c\n]+", "a{2}b{1,}c{0,2}", "(?P<name>foo|bar)baz", r"\s*,\s*",
    r"[\w\-\.]+@[a-z]+\.(com|org)", r'"([^"\\]|\\.)*"', "(a|)b?", "", r"[\]\[^-]+",
    r"\t\n\\\x41\u00e9", r"(0|[1-9][0-9]*)(,[0-9]{3})*", "(ab?)+c", "[[:alpha:]]+",
    r"a\141", "x{,2}y", "(?#a comment)a|b", r"[^\W\d_]+", "é+|世界|🙂", "a|b|c|ab|abc",
    "((a|b)c?)*d", r"\S+\s\S+", r"(?:\+|-)?\d+", "x+?y*?", r"[^\s\S]|z", "(a|b){0}c?",
]


def _mutations(text: str) -> st.SearchStrategy[str]:
    chars = st.sampled_from(ALPHABET)
    position = st.integers(0, len(text))
    return st.one_of(
        st.builds(lambda i, c: text[:i] + c + text[i:], position, chars),
        st.builds(lambda i: text[:i] + text[i + 1:], position),
        st.builds(lambda i, c: text[:i] + c + text[i + 1:], position, chars),
        st.builds(lambda i: text[:i], position),
        st.builds(lambda s: text + s, st.text(ALPHABET, max_size=3)),
    )


@pytest.mark.parametrize("pattern", PARITY)
@FAST
@given(data=st.data())
def test_index_form_accepts_exactly_what_fullmatch_accepts(pattern: str, data) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        strategy = st.from_regex(pattern, fullmatch=True, alphabet=ALPHABET)
    good = data.draw(st.one_of(strategy, st.just("")))
    texts = [good, data.draw(_mutations(good)), data.draw(st.text(ALPHABET, max_size=6))]
    for text in texts:
        assert automaton_accepts(pattern, text) == fullmatch(pattern, text), (pattern, text)


@pytest.mark.parametrize("pattern,text", [(r"\w", "²"), (r"\w", "\u0301"), (r"\s", "\x1c"),
                                          (r"\d", "\u0660"), (r"\d", "²"), (".", "\n"),
                                          ("[[:alpha:]]+", "a]"), ("[[:alpha:]]+", ":]")])
def test_python_meaning_wins_where_rust_disagrees(pattern: str, text: str) -> None:
    assert automaton_accepts(pattern, text) == fullmatch(pattern, text)


# -- JSON schemas -----------------------------------------------------------------------------

@pytest.mark.parametrize("whitespace", ["compact", "flexible"])
@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(s)[:40] for s in SCHEMAS])
@settings(max_examples=12, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_schema_regex_automaton_matches_fullmatch(schema, whitespace: str, data) -> None:
    regex = regex_for_schema(schema, whitespace)
    # the generic-JSON regexes (thousands of characters: `{}` anywhere in the schema) are
    # tested apart; on their mutations Python's backtracking `re` can take minutes
    if len(regex) >= 2000:
        return
    text = data.draw(texts_matching(regex))
    assert automaton_accepts(regex, text), text
    mutated = data.draw(_mutations(text))
    assert automaton_accepts(regex, mutated) == fullmatch(regex, mutated), mutated


@FAST
@given(text=st.from_regex(regex_for_schema({}), fullmatch=True, alphabet=ALPHABET))
def test_any_json_automaton_matches_fullmatch(text: str) -> None:
    regex = regex_for_schema({})
    json.loads(text)
    assert automaton_accepts(regex, text)
    for mutated in (text[:-1], text + "0", text + " ", "[" + text + "]", text.replace(":", "")):
        assert automaton_accepts(regex, mutated) == fullmatch(regex, mutated), mutated
