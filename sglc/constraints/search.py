"""Searching a growing text for a pattern of the dialect, in linear time (stop regexes).

`compile_search(p)` checks `p` (the dialect of `regex.py`, less the anchors, and it must not
match the empty text) and builds its Thompson NFA; `SearchPattern.searcher(start)` scans a
text that grows at its end, each character once:

    threads: NFA state -> the earliest start of a partial match in that state
    per character c at position i:  a thread starts at i; each thread whose state admits c
                                    moves on (epsilon moves folded in at build time)
    a thread reaching the final state: text[start:i + 1] matches the pattern whole

So the first match found is the one that ends first, and of those the leftmost: what a stop
regex cuts at. No backtracking: a pattern such as (a+)+b costs the same as a+b.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sglc.constraints.charsets import CHAR_OPS, Intervals, charset, sre
from sglc.constraints.errors import ConstraintError
from sglc.constraints.regex import parse_pattern

MAX_SEARCH_STATES = 5000
"""The most NFA states a searched pattern may have (counted repeats multiply them)."""

CharTest = Callable[[str], bool]


class SearchPattern:
    """A compiled search pattern: `tests[s]` says which characters state s admits and
    `outs[s]` where it goes; `closures[s]` are the character states reachable from s by
    epsilon moves and whether the final state is among them."""

    def __init__(self, pattern: str, tests: list[CharTest], outs: list[int],
                 closures: dict[int, tuple[tuple[int, ...], bool]], start: int) -> None:
        self.pattern = pattern
        self.tests = tests
        self.outs = outs
        self.closures = closures
        self.start_states = closures[start][0]

    def searcher(self, start: int = 0) -> Searcher:
        """A scan of a text from position `start` on."""
        return Searcher(self, start)


class Searcher:
    """The scan state of one growing text (see the module docstring)."""

    def __init__(self, pattern: SearchPattern, start: int) -> None:
        self.pattern = pattern
        self.pos = start  # the characters before it are scanned
        self._threads: dict[int, int] = {}  # ordered by start, ascending

    def feed(self, text: str) -> tuple[int, int] | None:
        """Scan `text[pos:]`; the (start, end) of the first match that ends in it, else None.
        After a match the scan goes on after its end."""
        p = self.pattern
        tests, outs, closures, starts = p.tests, p.outs, p.closures, p.start_states
        threads = self._threads
        for i in range(self.pos, len(text)):
            c = text[i]
            for s in starts:
                threads.setdefault(s, i)
            moved: dict[int, int] = {}
            found = None
            for s, begin in threads.items():
                if tests[s](c):
                    chars, is_final = closures[outs[s]]
                    if is_final and found is None:
                        found = begin  # threads are ordered by start: the leftmost
                    for t in chars:
                        moved.setdefault(t, begin)
            threads = moved
            if found is not None:
                self.pos, self._threads = i + 1, threads
                return found, i + 1
        self.pos, self._threads = len(text), threads
        return None

    @property
    def safe_len(self) -> int:
        """Where the earliest partial match starts (the text before it is in no match that
        may still complete); `pos` when none is under way."""
        return next(iter(self._threads.values()), self.pos)


@lru_cache(maxsize=256)
def compile_search(pattern: str) -> SearchPattern:
    """The pattern compiled for searching; ConstraintError (with `position`) if it is not in
    the dialect, has an anchor, matches the empty text or is too large."""
    tree = parse_pattern(pattern)
    builder = _Builder(pattern)
    start = builder.seq(list(tree), builder.final)
    closures = {s: builder.closure(s) for s in {start, *builder.char_outs()}}
    if closures[start][1]:
        raise ConstraintError("the regex matches the empty text, so it would stop at once",
                              position=0, hint="make it match at least one character")
    return SearchPattern(pattern, builder.tests, builder.outs, closures, start)


class _Builder:
    """Thompson construction, back to front: each item is built knowing its successor."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.tests: list[Any] = []  # CharTest of a character state, None otherwise
        self.outs: list[Any] = []  # int (character), tuple (split), None (final)
        self.final = self._state(None, None)

    def _state(self, test: CharTest | None, out: int | tuple[int, ...] | None) -> int:
        if len(self.tests) >= MAX_SEARCH_STATES:
            raise ConstraintError(
                f"the regex is too large to search (more than {MAX_SEARCH_STATES} states)",
                hint="use fewer or smaller counted repeats {m,n}")
        self.tests.append(test)
        self.outs.append(out)
        return len(self.tests) - 1

    def seq(self, items: Sequence[Any], nxt: int) -> int:
        for op, av in reversed(items):
            nxt = self._item(op, av, nxt)
        return nxt

    def _item(self, op: Any, av: Any, nxt: int) -> int:
        if op in CHAR_OPS:
            return self._state(_char_test(charset(op, av)), nxt)
        if op is sre.SUBPATTERN:
            return self.seq(list(av[-1]), nxt)
        if op is sre.BRANCH:
            return self._state(None, tuple(self.seq(list(b), nxt) for b in av[1]))
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            return self._repeat(*av, nxt)
        if op is sre.AT:
            position = 0 if self.pattern.startswith("^") else len(self.pattern) - 1
            raise ConstraintError("anchors are not supported: the regex is searched anywhere "
                                  "in the text", position=position, hint="drop the anchor")
        raise ConstraintError(f"unsupported regex construct {op}")  # pragma: no cover

    def _repeat(self, low: int, high: int, body: Any, nxt: int) -> int:
        items = list(body)
        if high is sre.MAXREPEAT:
            loop = self._state(None, ())
            self.outs[loop] = (self.seq(items, loop), nxt)
            cur = loop
        else:
            cur = nxt
            for _ in range(high - low):  # optional copies: each may skip to the end
                cur = self._state(None, (self.seq(items, cur), nxt))
        for _ in range(low):
            cur = self.seq(items, cur)
        return cur

    def char_outs(self) -> set[int]:
        return {out for test, out in zip(self.tests, self.outs, strict=True) if test is not None}

    def closure(self, state: int) -> tuple[tuple[int, ...], bool]:
        """The character states reachable from `state` by epsilon moves, and whether the
        final state is."""
        chars: list[int] = []
        is_final, seen, todo = False, {state}, [state]
        while todo:
            s = todo.pop()
            if self.tests[s] is not None:
                chars.append(s)
            elif self.outs[s] is None:
                is_final = True
            else:
                for t in self.outs[s]:
                    if t not in seen:
                        seen.add(t)
                        todo.append(t)
        return tuple(chars), is_final


def _char_test(intervals: Intervals) -> CharTest:
    if len(intervals) == 1 and intervals[0][0] == intervals[0][1]:
        return chr(intervals[0][0]).__eq__
    lows = [lo for lo, _ in intervals]
    highs = [hi for _, hi in intervals]

    def test(c: str) -> bool:
        code = ord(c)
        k = bisect_right(lows, code) - 1
        return k >= 0 and code <= highs[k]

    return test


class SearchPatterns:
    """A gen or request parameter rule: a search pattern or a list of them, each non-empty
    and compiling (`compile_search`); the error names the pattern and the position."""

    def error(self, name: str, value: object) -> str | None:
        items = (value,) if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(
            isinstance(s, str) and s for s in items
        ):
            return (f"{name} must be a non-empty string or a list of non-empty strings, "
                    f"got {value!r:.80}")
        for pattern in items:
            try:
                compile_search(pattern)
            except ConstraintError as exc:
                hint = f"; {exc.hint}" if exc.hint else ""
                return f"{name} {pattern!r}: {exc}{hint}"
        return None


__all__ = ["MAX_SEARCH_STATES", "SearchPattern", "SearchPatterns", "Searcher", "compile_search"]
