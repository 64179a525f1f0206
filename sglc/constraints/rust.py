"""A parse tree of the dialect re-emitted in the syntax of Rust's regex crate (what
outlines-core builds automata with), meaning what Python means: every class as explicit
code-point ranges computed from Python's tables, groups as (?:...), lazy quantifiers as greedy
ones. Both engines then accept the same texts where their syntaxes disagree (\\w and \\s differ
on some code points; Rust has no octal escapes, no {,n}, reads [[:alpha:]] as a POSIX class).

Emitters return None for the empty language (no text at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sglc.constraints.charsets import CHAR_OPS, Intervals, charset, complement, sre
from sglc.constraints.errors import ConstraintError

_RUST_META = frozenset("\\.+*?()|[]{}^$#&-~")


def _esc(cp: int) -> str:
    ch = chr(cp)
    if ch in _RUST_META:
        return "\\" + ch
    return ch if " " < ch < "\x7f" else f"\\x{{{cp:X}}}"


def _ranges(ivs: Intervals) -> str:
    return "".join(_esc(lo) if lo == hi else f"{_esc(lo)}-{_esc(hi)}" for lo, hi in ivs)


def _emit_set(ivs: Intervals) -> str | None:
    if not ivs:
        return None
    if len(ivs) == 1 and ivs[0][0] == ivs[0][1]:
        return _esc(ivs[0][0])
    rest = complement(ivs)
    if not rest:
        return "[\\x{0}-\\x{10FFFF}]"
    return f"[^{_ranges(rest)}]" if len(rest) < len(ivs) else f"[{_ranges(ivs)}]"


def _alt(alternatives: Sequence[str | None]) -> str | None:
    """(?:a|b|...) of the non-empty languages among `alternatives`."""
    kept = [a for a in alternatives if a is not None]
    return f"(?:{'|'.join(kept)})" if kept else None


def _quantifier(lo: int, hi: int) -> str:
    if hi == sre.MAXREPEAT:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    if (lo, hi) in ((0, 1), (1, 1)):
        return "?" if lo == 0 else ""
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def _is_atom(items: Sequence[Any]) -> bool:
    """Whether `items` is one character or class (possibly in groups): no parentheses needed."""
    if len(items) != 1:
        return False
    op, av = items[0]
    return op in CHAR_OPS or (op is sre.SUBPATTERN and _is_atom(av[3].data))


def _repeat(body: str, items: Sequence[Any], lo: int, hi: int) -> str:
    return (body if _is_atom(items) else f"(?:{body})") + _quantifier(lo, hi)


def emit_seq(items: Sequence[Any]) -> str | None:
    """A sequence of parse-tree items in Rust syntax."""
    parts = []
    for op, av in items:
        part = _emit_item(op, av)
        if part is None:
            return None
        parts.append(part)
    return "".join(parts)


def _emit_item(op: Any, av: Any) -> str | None:
    if op in CHAR_OPS:
        return _emit_set(charset(op, av))
    if op is sre.AT and av in (sre.AT_BEGINNING, sre.AT_END):
        return ""
    if op is sre.SUBPATTERN and not av[1] and not av[2]:
        inner = emit_seq(av[3].data)
        return inner if inner is None or _is_atom(av[3].data) else f"(?:{inner})"
    if op is sre.BRANCH:
        return _alt([emit_seq(branch.data) for branch in av[1]])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        lo, hi, sub = av
        body = emit_seq(sub.data)
        if body is None or hi == 0 or body == "":
            return "" if lo == 0 or body == "" else None
        return _repeat(body, sub.data, lo, hi)
    raise ConstraintError(f"unsupported regex construct {op}")


def nullable_seq(items: Sequence[Any]) -> bool:
    """Whether the empty text matches the sequence."""
    return all(nullable(op, av) for op, av in items)


def nullable(op: Any, av: Any) -> bool:
    """Whether the empty text matches one item."""
    if op in CHAR_OPS:
        return False
    if op is sre.SUBPATTERN:
        return nullable_seq(av[3].data)
    if op is sre.BRANCH:
        return any(nullable_seq(branch.data) for branch in av[1])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        return av[0] == 0 or nullable_seq(av[2].data)
    return True  # AT


def nonempty_seq(items: Sequence[Any]) -> str | None:
    """The language of `items` minus the empty text, in Rust syntax (None: nothing left)."""
    if not nullable_seq(items):
        return emit_seq(items)
    if not items:
        return None
    (op, av), rest = items[0], items[1:]
    head, tail = _nonempty_item(op, av), emit_seq(rest)  # here every item is nullable
    first = None if head is None or tail is None else head + tail
    return _alt([first, nonempty_seq(rest)])


def _nonempty_item(op: Any, av: Any) -> str | None:
    if not nullable(op, av):
        return _emit_item(op, av)
    if op is sre.SUBPATTERN:
        return nonempty_seq(av[3].data)
    if op is sre.BRANCH:
        return _alt([nonempty_seq(branch.data) for branch in av[1]])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        _, hi, sub = av
        body = nonempty_seq(sub.data)
        return None if body is None or hi == 0 else _repeat(body, sub.data, 1, hi)
    return None  # AT


__all__ = ["emit_seq", "nonempty_seq", "nullable", "nullable_seq"]
