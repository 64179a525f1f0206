"""Python's regex parser, and the sets of characters its parse trees match, as sorted,
disjoint code-point intervals over the Unicode scalar values (no surrogates: they never occur
in text). The dialect check (`regex.py`) and the Index form (`index.py`) both build on these."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sglc.constraints.errors import ConstraintError, RegexSyntaxError

try:  # Python 3.11+
    from re import _constants as sre
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as sre  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

Tree = sre_parse.SubPattern
"""Python's parse tree of a pattern; `.data` is its list of (op, argument) items."""

_RE_HINTS = (
    ("unterminated character set", "close the class with ']' (write \\] for a literal bracket)"),
    ("missing )", "balance the parentheses (write \\( or \\) for literal ones)"),
    ("unbalanced parenthesis", "balance the parentheses (write \\( or \\) for literal ones)"),
    ("nothing to repeat", "escape the quantifier character to match it literally, e.g. \\*"),
    ("multiple repeat", "escape the quantifier character to match it literally, e.g. \\*"),
    ("bad escape", "remove the backslash or use a supported escape such as \\d, \\w, \\s, \\n"),
    ("min repeat greater", "write the smaller count first: {m,n} with m <= n"),
)


def parse_python(pattern: str) -> Tree:
    """Python's parse tree of `pattern`; RegexSyntaxError (with Python's position) if `re`
    rejects it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarning for [[ && -- ~~ || inside classes
        try:
            return sre_parse.parse(pattern, 0)
        except re.error as exc:
            hint = next((h for key, h in _RE_HINTS if key in exc.msg), None)
            raise RegexSyntaxError(f"invalid regex: {exc.msg}", position=exc.pos or 0,
                                   hint=hint) from None


Intervals = tuple[tuple[int, int], ...]
_UNIVERSE: Intervals = ((0, 0xD7FF), (0xE000, 0x10FFFF))
_CATEGORIES = {
    sre.CATEGORY_DIGIT: ("d", False), sre.CATEGORY_NOT_DIGIT: ("d", True),
    sre.CATEGORY_SPACE: ("s", False), sre.CATEGORY_NOT_SPACE: ("s", True),
    sre.CATEGORY_WORD: ("w", False), sre.CATEGORY_NOT_WORD: ("w", True),
}
CHAR_OPS = frozenset({sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN})
"""The parse-tree items that match one character."""


def merge(ivs: Sequence[tuple[int, int]]) -> Intervals:
    """Sort, merge and clip to the scalar values."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ivs):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple((max(lo, ulo), min(hi, uhi)) for lo, hi in out for ulo, uhi in _UNIVERSE
                 if lo <= uhi and hi >= ulo)


def complement(ivs: Intervals) -> Intervals:
    out, nxt = [], 0
    for lo, hi in ivs:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= 0x10FFFF:
        out.append((nxt, 0x10FFFF))
    return merge(out)


def overlaps(a: Intervals, b: Intervals) -> bool:
    return any(lo <= bhi and hi >= blo for lo, hi in a for blo, bhi in b)


@lru_cache(maxsize=1)
def _category_sets() -> dict[str, Intervals]:
    """Python's \\d, \\s and \\w (str patterns: Unicode), as intervals."""
    text = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))

    def code_point(index: int) -> int:
        return index if index < 0xD800 else index + 0x800

    return {name: merge([(code_point(m.start()), code_point(m.end() - 1))
                         for m in re.finditer(f"\\{name}+", text)]) for name in "dsw"}


def charset(op: Any, av: Any) -> Intervals:
    """The characters one item of a parse tree matches (an op in `CHAR_OPS`)."""
    if op is sre.LITERAL:
        return merge([(av, av)])
    if op is sre.NOT_LITERAL:
        return complement(merge([(av, av)]))
    if op is sre.ANY:
        return complement(((10, 10),))
    negate, ivs = False, []
    for item, value in av:
        if item is sre.NEGATE:
            negate = True
        elif item is sre.LITERAL:
            ivs.append((value, value))
        elif item is sre.RANGE:
            ivs.append(value)
        elif item is sre.CATEGORY and value in _CATEGORIES:
            name, negated = _CATEGORIES[value]
            category = _category_sets()[name]
            ivs.extend(complement(category) if negated else category)
        else:
            raise ConstraintError(f"unsupported class item {item}")
    merged = merge(ivs)
    return complement(merged) if negate else merged


def chars_of(items: Sequence[Any]) -> Intervals:
    """The characters a parse tree's items may match anywhere (an over-approximation)."""
    found: list[tuple[int, int]] = []
    for op, av in items:
        if op in CHAR_OPS:
            found.extend(charset(op, av))
        elif op is sre.SUBPATTERN:
            found.extend(chars_of(av[-1]))
        elif op is sre.BRANCH:
            for branch in av[1]:
                found.extend(chars_of(branch))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            found.extend(chars_of(av[2]))
    return merge(found)


__all__ = ["CHAR_OPS", "Intervals", "Tree", "chars_of", "charset", "complement", "merge",
           "overlaps", "parse_python", "sre"]
