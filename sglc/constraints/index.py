"""The form of a canonical regex that the engine's token automaton (outlines-core `Index`) is
built from: `index_form(pattern)` is the pattern re-emitted in Rust syntax (`rust.py`), minus
the empty text, anchored with `$`, and whether the empty text is accepted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sglc.constraints.charsets import CHAR_OPS, Intervals, charset, merge, overlaps, sre
from sglc.constraints.errors import ConstraintError
from sglc.constraints.regex import parse_pattern
from sglc.constraints.rust import emit_seq, nonempty_seq, nullable, nullable_seq
from sglc.constraints.schema import is_json_regex


@dataclass(frozen=True)
class IndexForm:
    """What the engine builds its automaton from: `regex` for `outlines_core.Index` (the
    pattern's language minus the empty text, with the trailing `$` the Index needs; None when
    the language is exactly {""}), and whether the empty text is accepted (the Index cannot say
    so: the matcher must allow EOS before the first token itself)."""

    regex: str | None
    accepts_empty: bool


# NOTE: outlines-core 0.2.14 (pinned by tests/runtime/constrained/test_constrained_regex.py).
# `Index(regex, vocabulary)` builds a leftmost-first regex-automata DFA, anchored at the start
# but not at the end, and keeps a token transition only when the state it reaches is not a
# match state or is a match at end of input. Matches are reported one byte late, so once a
# proper prefix of a text is itself a match, every continuation that is not itself a full match
# is dropped: `[0-9]+(\.[0-9]+)?` rejects "1.5", `(yes|yesterday)` rejects "yesterday". A
# trailing `$` fixes it: no state matches before the end of input. But when the empty text is
# in the language, `$` is reachable from the start, the DFA has no context-independent
# ("universal") start state, and `Index` raises ("anchored universal start state doesn't
# exist"); a leading `^` (or \A) fails the same way. No regex form gives an `Index` that
# accepts the empty text correctly. Hence `(?:R)$` with R the language minus the empty text
# (for a nullable sequence AB: (A minus "")B | (B minus "")), and `accepts_empty` for the
# matcher to honour.
def index_form(pattern: str) -> IndexForm:
    """The Index form of a canonical regex; ConstraintError unless it is in the dialect."""
    if not isinstance(pattern, str):
        parse_pattern(pattern)  # raises the dialect's error for a non-string
    return _index_form(pattern)


def index_regex(pattern: str) -> str:
    """The regex to hand to `outlines_core.Index` for a canonical regex: it accepts exactly
    the non-empty texts `re.fullmatch(pattern, text)` accepts. Check `index_form(pattern)
    .accepts_empty` for the empty text; raises ConstraintError when only "" is accepted."""
    form = index_form(pattern)
    if form.regex is None:
        raise ConstraintError("the regex matches only the empty text; no automaton is needed",
                              hint="check index_form(pattern).accepts_empty first")
    return form.regex


@lru_cache(maxsize=512)
def _index_form(pattern: str) -> IndexForm:
    items = parse_pattern(pattern).data
    if is_json_regex(pattern):
        return IndexForm(_json_index_regex(items), False)
    body = nonempty_seq(items)
    return IndexForm(None if body is None else f"(?:{body})$", nullable_seq(items))


_NUMBER_START: Intervals = ((0x2D, 0x2D), (0x30, 0x39))


def _json_index_regex(items: Sequence[Any]) -> str:
    """The Index form of a JSON regex: `$` only after the top-level alternatives that can
    start a number (a JSON text that is not a number is never a proper prefix of another)."""
    # NOTE: with `$`, none of regex-automata's threads ends early, and it also determinizes the
    # unanchored start (unused by `Index`): with one `$` after the whole any-JSON regex the
    # build is too slow to use. Only regexes `regex_for_schema` made in this process are known
    # to be JSON (`is_json_regex`); others get the plain form: the same language, built slower.
    parts = []
    for branch in _alternatives(items):
        body = emit_seq(branch)
        if body is not None:
            number = overlaps(_first_chars(branch), _NUMBER_START)
            parts.append(body + "$" if number else body)
    return f"(?:{'|'.join(parts)})"


def _alternatives(items: Sequence[Any]) -> list[Sequence[Any]]:
    """The top-level alternatives of a parse tree, through groups and nested alternations."""
    if len(items) == 1 and items[0][0] is sre.SUBPATTERN and not items[0][1][1]:
        return _alternatives(items[0][1][3].data)
    if len(items) == 1 and items[0][0] is sre.BRANCH:
        return [alt for branch in items[0][1][1] for alt in _alternatives(branch.data)]
    return [items]


def _first_chars(items: Sequence[Any]) -> Intervals:
    """The characters a text of `items` can start with."""
    out: list[tuple[int, int]] = []
    for op, av in items:
        if op in CHAR_OPS:
            out.extend(charset(op, av))
        elif op is sre.SUBPATTERN:
            out.extend(_first_chars(av[3].data))
        elif op is sre.BRANCH:
            out.extend(iv for branch in av[1] for iv in _first_chars(branch.data))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[1] > 0:
            out.extend(_first_chars(av[2].data))
        if not nullable(op, av):
            break
    return merge(out)


__all__ = ["IndexForm", "index_form", "index_regex"]
