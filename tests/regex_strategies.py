"""Random small regexes over {a, b} and their languages up to a length, by Python's `re`
(for the automata and spec-pass property tests)."""

from __future__ import annotations

import itertools
import re

from hypothesis import strategies as st

ALPHABET = "ab"
MAX_LEN = 7
TEXTS = ["".join(t) for n in range(MAX_LEN + 1) for t in itertools.product(ALPHABET, repeat=n)]


def language(pattern: str) -> set[str]:
    return {t for t in TEXTS if re.fullmatch(pattern, t)}


def regexes() -> st.SearchStrategy[str]:
    atoms = st.sampled_from(["a", "b", "[ab]", "(?:)", "a?", "b*"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map(lambda p: p[0] + p[1]),
            st.tuples(inner, inner).map(lambda p: f"(?:{p[0]}|{p[1]})"),
            inner.map(lambda r: f"(?:{r})*"),
            inner.map(lambda r: f"(?:{r}){{1,2}}"),
        )

    return st.recursive(atoms, extend, max_leaves=5)
