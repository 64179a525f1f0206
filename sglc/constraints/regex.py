"""The regex dialect of constraints: `check_pattern` accepts a pattern or raises
`ConstraintError` with the 0-based `position` of the offending construct and a hint.

A pattern means what Python's `re.fullmatch` says: the text must match it whole. The dialect
is Python `re` syntax restricted to regular constructs (what outlines-core can build an
automaton for):

    literals and escapes   \\n \\t \\xHH \\uHHHH \\UHHHHHHHH \\N{name}, octal, escaped punctuation
    classes                [...] [^...] with ranges and \\d \\w \\s \\D \\W \\S (Unicode, as Python
                           defines them); . is any character except \\n ([\\s\\S] is any character)
    groups                 (...) (?:...) (?P<name>...), comments (?#...)
    alternation            |
    quantifiers            ? * + {m} {m,} {,n} {m,n}; the lazy forms (*? +? ?? {m,n}?) mean the
                           same (a constraint is a set of whole texts)
    anchors                only a leading ^ and a trailing $, which change nothing

Rejected: anchors elsewhere (^ $ \\A \\Z \\b \\B), lookarounds (?= (?! (?<= (?<!, backreferences
\\1 (?P=name), conditionals (?(1)..), atomic groups (?>..), possessive quantifiers (*+ ++ ?+
{m,n}+), inline flags (?i) (?s:..), a pattern that matches no text at all (e.g. [^\\s\\S]; the
position is the first class that matches no character), and what Python's `re` rejects
(`RegexSyntaxError`, at Python's position).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from sglc.constraints.charsets import Intervals, Tree, chars_of, charset, parse_python, sre
from sglc.constraints.errors import ConstraintError
from sglc.constraints.rust import emit_seq

_ANCHOR_HINT = "a constraint always matches the whole text; drop the anchor"
_FLAGS_HINT = "spell the cases out, e.g. [aA], or [\\s\\S] for any character"
_BACKREF_HINT = "a regular language cannot repeat a captured text"
_LOOKAROUND_HINT = "spell out the text the assertion looks at, e.g. ab instead of a(?=b)b"
_REPEAT = re.compile(r"\{(?:\d+(?:,\d*)?|,\d*)\}")
_GROUP_ERRORS = (
    ("(?P=", "backreferences are not supported", _BACKREF_HINT),
    ("(?=", "lookaround assertions are not supported", _LOOKAROUND_HINT),
    ("(?!", "lookaround assertions are not supported", _LOOKAROUND_HINT),
    ("(?<=", "lookaround assertions are not supported", _LOOKAROUND_HINT),
    ("(?<!", "lookaround assertions are not supported", _LOOKAROUND_HINT),
    ("(?>", "atomic groups are not supported", "use a plain group (?:...)"),
    ("(?(", "conditional groups are not supported", "use an alternation (a|b)"),
)


def check_pattern(pattern: str) -> None:
    """Raise ConstraintError (with `position`) unless `pattern` is in the dialect and matches
    at least one text."""
    parse_pattern(pattern)


def parse_pattern(pattern: str) -> Tree:
    """Python's parse tree of a pattern in the dialect (ConstraintError otherwise)."""
    if not isinstance(pattern, str):
        raise ConstraintError(f"a regex must be a string, not {type(pattern).__name__}")
    return _parse_checked(pattern)


def used_chars(pattern: str) -> Intervals:
    """Every character some text of `pattern` may contain (an over-approximation), as
    code-point intervals; ConstraintError unless the pattern is in the dialect."""
    return chars_of(parse_pattern(pattern).data)


def strip_anchors(pattern: str) -> str:
    """A pattern in the dialect without its leading ^ and trailing $ (no-ops for fullmatch)."""
    if pattern.startswith("^"):
        pattern = pattern[1:]
    backslashes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
    if pattern.endswith("$") and backslashes % 2 == 0:
        pattern = pattern[:-1]
    return pattern


@lru_cache(maxsize=512)
def _parse_checked(pattern: str) -> Tree:
    tree = parse_python(pattern)
    if tree.state.flags & ~sre.SRE_FLAG_UNICODE:
        raise ConstraintError("inline flags are not supported", position=0, hint=_FLAGS_HINT)
    classes = list(_scan(pattern))
    if emit_seq(tree.data) is None:
        raise ConstraintError("the regex matches no text", position=_empty_class(pattern, classes),
                              hint="a class such as [^\\s\\S] matches no character")
    return tree


def _scan(p: str) -> Iterator[tuple[int, int]]:
    """Walk a pattern Python accepted; raise on unsupported constructs, yield class spans."""
    i, quantified = 0, False  # quantified: the previous token was a quantifier
    while i < len(p):
        c = p[i]
        repeat = _REPEAT.match(p, i) if c == "{" else None
        if c in "*+?" or repeat:
            if quantified and c == "+":
                raise ConstraintError("possessive quantifiers are not supported", position=i,
                                      hint="drop the + after the quantifier")
            i, quantified = (repeat.end() if repeat else i + 1), not quantified
            continue
        quantified = False
        if c == "\\":
            _check_escape(p, i)
            i = _escape_end(p, i)
        elif c == "[":
            end = _class_end(p, i)
            yield i, end
            i = end
        elif c == "(":
            i = _group_start(p, i)
        else:
            _check_anchor(p, i)
            i += 1


def _check_escape(p: str, i: int) -> None:
    nxt = p[i + 1]
    if nxt in "AZbB":
        raise ConstraintError(f"anchor \\{nxt} is not supported", position=i, hint=_ANCHOR_HINT)
    if nxt in "123456789" and not _is_octal(p, i + 1):
        raise ConstraintError("backreferences are not supported", position=i,
                              hint=_BACKREF_HINT)


def _is_octal(p: str, j: int) -> bool:
    """Python reads a backslash and three octal digits as an octal escape."""
    return len(p) >= j + 3 and all(ch in "01234567" for ch in p[j:j + 3])


def _escape_end(p: str, i: int) -> int:
    return p.index("}", i) + 1 if p.startswith("N{", i + 1) else i + 2


def _class_end(p: str, i: int) -> int:
    j = i + 1
    j += p.startswith("^", j)
    j += p.startswith("]", j)
    while p[j] != "]":
        j = _escape_end(p, j) if p[j] == "\\" else j + 1
    return j + 1


def _group_start(p: str, i: int) -> int:
    """Check a group opening at `i`; return where scanning goes on."""
    if not p.startswith("(?", i):
        return i + 1
    if p.startswith("(?:", i):
        return i + 3
    if p.startswith("(?P<", i):
        return p.index(">", i) + 1
    if p.startswith("(?#", i):
        return p.index(")", i) + 1
    for prefix, message, hint in _GROUP_ERRORS:
        if p.startswith(prefix, i):
            raise ConstraintError(message, position=i, hint=hint)
    raise ConstraintError("inline flags are not supported", position=i, hint=_FLAGS_HINT)


def _check_anchor(p: str, i: int) -> None:
    if (p[i] == "^" and i > 0) or (p[i] == "$" and i < len(p) - 1):
        where = "start" if p[i] == "^" else "end"
        raise ConstraintError(f"anchor {p[i]} is only allowed at the {where} of a constraint",
                              position=i, hint=_ANCHOR_HINT)


def _empty_class(pattern: str, classes: Sequence[tuple[int, int]]) -> int | None:
    """The position of the first class that matches no character."""
    for start, end in classes:
        data = parse_python(pattern[start:end]).data
        if len(data) == 1 and not charset(*data[0]):
            return start
    return None


__all__ = ["check_pattern", "parse_pattern", "strip_anchors", "used_chars"]
