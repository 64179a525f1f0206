"""Spec terms as automata over the text a value is generated as.

A `Domain` says how a value is written: `str` (the text is the value), `int` (the canonical
integer literals, `-0` included), `json_str` (a JSON string literal of the schema compiler:
quotes, and only the escapes \\" \\\\ \\/ \\b \\f \\n \\r \\t), `float` and `other` (no
regular reading). `term_language(term, domain)` is the set of texts whose value satisfies
the term, or `NotRegular` with the reason.
"""

from __future__ import annotations

import math
from typing import Literal

from sglc.constraints import escape_literal, regex_for_int_range
from sglc.constraints.automata import MAX_CODE, Dfa, Edge
from sglc.ir.spec_terms import Term
from sglc.ir.specs.decimals import DECIMAL_TEXTS, decimal_regex

Domain = Literal["str", "int", "json_str", "float", "other"]
_ANY = r"[\s\S]"


FLOAT_REASON = ("a float text with an exponent has no regular range check (it relates the "
                "exponent to the digits): those texts are checked at run time")


class NotRegular(Exception):
    """A term (or part) with no automaton in its domain; the message says why."""


def term_language(term: Term, domain: Domain) -> Dfa:
    """The texts (in `domain`'s writing) whose value satisfies `term` (one subject)."""
    if domain == "json_str":
        return json_string_texts(_value_language(term, "str"))
    return _value_language(term, domain)


def _value_language(term: Term, domain: Domain) -> Dfa:
    head = term[0]
    if head == "true":
        return Dfa.of_any()
    if head == "false":
        return Dfa.of_none()
    if head == "and":
        out = Dfa.of_any()
        for part in term[1:]:
            out = out & _value_language(part, domain)
        return out
    if head == "or":
        out = Dfa.of_none()
        for part in term[1:]:
            out = out | _value_language(part, domain)
        return out
    if head == "not":
        return ~_value_language(term[1], domain) & _domain_texts(domain)
    if head == "opaque":
        raise NotRegular(term[1])
    if domain == "str":
        return _str_atom(term)
    if domain == "int":
        return _int_atom(term)
    if domain == "float":
        return _float_atom(term)
    raise NotRegular("this value has no regular reading")


def _domain_texts(domain: Domain) -> Dfa:
    if domain == "int":
        return Dfa.of(r"-?(0|[1-9][0-9]*)")
    return Dfa.of(DECIMAL_TEXTS) if domain == "float" else Dfa.of_any()


def _float_atom(term: Term) -> Dfa:
    """Over the exponent-free float texts (`decimals.py`)."""
    head = term[0]
    if head == "in":
        return _union_of(_float_atom(("cmp", term[1], "==", v)) for v in term[2])
    if head != "cmp":
        raise NotRegular(f"`{head}` does not apply to a float")
    op, value = term[2], term[3]
    if op == "!=":
        return _domain_texts("float") - _float_atom(("cmp", term[1], "==", value))
    if not isinstance(value, (int, float)):
        if op == "==":
            return Dfa.of_none()
        raise NotRegular("a float ordered against a string is a run-time error")
    regex = decimal_regex(op, value)
    return Dfa.of_none() if regex is None else Dfa.of(regex)


def _str_atom(term: Term) -> Dfa:
    head = term[0]
    if head == "matches":
        return Dfa.of(term[2])
    if head == "len":
        return _length_language(term[2], term[3])
    if head == "startswith":
        return Dfa.of(escape_literal(term[2]) + _ANY + "*")
    if head == "endswith":
        return Dfa.of(_ANY + "*" + escape_literal(term[2]))
    if head == "in":
        return _union_of(Dfa.of(escape_literal(v)) for v in term[2] if isinstance(v, str))
    if head == "cmp":
        op, value = term[2], term[3]
        if op not in ("==", "!="):
            raise NotRegular("ordering between strings is checked at run time")
        same = Dfa.of(escape_literal(value)) if isinstance(value, str) else Dfa.of_none()
        return same if op == "==" else ~same
    raise NotRegular(f"`{head}` does not apply to a string")


def _length_language(op: str, n: int) -> Dfa:
    if op == "!=":
        return ~_length_language("==", n)
    low, high = {"==": (n, n), "<=": (0, n), "<": (0, n - 1), ">=": (n, None),
                 ">": (n + 1, None)}[op]
    low = max(low, 0)
    if high is not None and high < low:
        return Dfa.of_none()
    return Dfa.of(f"{_ANY}{{{low},{'' if high is None else high}}}")


def _int_atom(term: Term) -> Dfa:
    head = term[0]
    if head == "in":
        return _union_of(_int_range(v, v) for v in term[2]
                         if isinstance(v, (int, float)) and float(v).is_integer())
    if head != "cmp":
        raise NotRegular(f"`{head}` does not apply to an int")
    op, value = term[2], term[3]
    if op == "!=":
        return _domain_texts("int") - _int_atom(("cmp", term[1], "==", value))
    if not isinstance(value, (int, float)):
        if op == "==":
            return Dfa.of_none()  # an int never equals a string
        raise NotRegular("an int ordered against a string is a run-time error")
    return _int_range(*_int_bounds(op, value))


def _int_bounds(op: str, value: float) -> tuple[int | None, int | None]:
    """The integers n with `n op value`, as (lo, hi) (None: unbounded; lo > hi: none)."""
    floor, ceil = math.floor(value), math.ceil(value)
    if op == "==":
        return (int(value), int(value)) if float(value).is_integer() else (1, 0)
    return {"<": (None, ceil - 1), "<=": (None, floor), ">": (floor + 1, None),
            ">=": (ceil, None), "!=": (None, None)}[op]


def _int_range(lo: float | None, hi: float | None) -> Dfa:
    """The integer literals with lo <= value <= hi, `-0` included where 0 is."""
    lo = None if lo is None else int(lo)
    hi = None if hi is None else int(hi)
    if lo is not None and hi is not None and lo > hi:
        return Dfa.of_none()
    out = Dfa.of(regex_for_int_range(lo, hi))
    if (lo is None or lo <= 0) and (hi is None or hi >= 0):
        out = out | Dfa.of("-0")
    return out


def int_interval(term: Term) -> tuple[int | None, int | None] | None:
    """A conjunction of comparisons with numbers as one interval of integers (for pushing
    it into a schema's integer bounds); None when the term is not one."""
    lo: int | None = None
    hi: int | None = None
    parts = term[1:] if term[0] == "and" else (term,)
    for part in parts:
        if part[0] != "cmp" or part[2] == "!=" or not isinstance(part[3], (int, float)) \
                or isinstance(part[3], bool):
            return None
        a, b = _int_bounds(part[2], part[3])
        lo = a if lo is None else lo if a is None else max(lo, a)
        hi = b if hi is None else hi if b is None else min(hi, b)
    return lo, hi


def _union_of(dfas: object) -> Dfa:
    out = Dfa.of_none()
    for d in dfas:  # type: ignore[attr-defined]
        out = out | d
    return out


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t"}


def json_string_texts(values: Dfa) -> Dfa:
    """The JSON string literals (as the schema compiler writes them: the escapes of
    `_ESCAPES`, no \\uXXXX) whose decoded value is in `values`.

    States: 0 before the opening quote; 1+s reading the value in state s; 1+n+s after a
    backslash in state s; 1+2n the closing quote read; 2+2n dead."""
    n = values.num_states
    closed, dead = 1 + 2 * n, 2 + 2 * n
    edges: list[list[Edge]] = [_row({ord('"'): 1}, dead)]
    for s in range(n):
        row: dict[int, int] = {}
        wide = [(max(lo, 0x20), hi, 1 + t) for lo, hi, t in values.edges[s] if hi >= 0x20]
        row[0x5C] = 1 + n + s
        row[0x22] = closed if s in values.accepting else dead
        edges.append(_row(row, dead, wide))
    for s in range(n):
        row = {ord(k): 1 + _target(values, s, v) for k, v in _ESCAPES.items()}
        edges.append(_row(row, dead))
    edges.append(_row({}, dead))
    edges.append(_row({}, dead))
    return Dfa(edges, frozenset({closed}))


def _target(values: Dfa, s: int, ch: str) -> int:
    code = ord(ch)
    return next(t for lo, hi, t in values.edges[s] if lo <= code <= hi)


def _row(points: dict[int, int], default: int,
         wide: list[tuple[int, int, int]] | None = None) -> list[Edge]:
    """Edges from single code points and wide ranges (minus the points); the rest to
    `default`."""
    spans: list[tuple[int, int, int]] = [(c, c, t) for c, t in points.items()]
    for lo, hi, t in wide or ():
        cur = lo
        for c in sorted(c for c in points if lo <= c <= hi):
            if cur < c:
                spans.append((cur, c - 1, t))
            cur = c + 1
        if cur <= hi:
            spans.append((cur, hi, t))
    spans.sort()
    row: list[Edge] = []
    cur = 0
    for lo, hi, t in spans:
        if lo > hi or hi < cur:
            continue
        lo = max(lo, cur)
        if lo > cur:
            _push(row, cur, lo - 1, default)
        _push(row, lo, hi, t)
        cur = hi + 1
    if cur <= MAX_CODE:
        _push(row, cur, MAX_CODE, default)
    return row


def _push(row: list[Edge], lo: int, hi: int, t: int) -> None:
    if row and row[-1][2] == t and row[-1][1] + 1 == lo:
        row[-1] = (row[-1][0], hi, t)
    else:
        row.append((lo, hi, t))


__all__ = ["FLOAT_REASON", "Domain", "NotRegular", "int_interval", "json_string_texts", "term_language"]
