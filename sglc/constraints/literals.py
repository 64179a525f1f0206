"""Regexes for literal texts: escaped strings, a choice among strings, integer ranges and
multiples."""

from __future__ import annotations

from collections.abc import Sequence

from sglc.constraints.errors import ConstraintError

_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def escape_literal(text: str) -> str:
    """Escape the characters that are special in both Python `re` and Rust `regex`."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def regex_for_choices(options: Sequence[str]) -> str:
    """(a|b|c): exactly one of the options, each escaped."""
    if isinstance(options, str) or not options:
        raise ConstraintError("a choice needs a non-empty list of options")
    for option in options:
        if not isinstance(option, str):
            raise ConstraintError(f"a choice option must be a string, not {option!r}")
    return "(" + "|".join(escape_literal(option) for option in options) + ")"


def regex_for_int_range(minimum: int | None = None, maximum: int | None = None) -> str:
    """The decimal integers n with minimum <= n <= maximum (either bound may be None), written
    as JSON writes them: no leading zeros, no + sign, no -0."""
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ConstraintError(f"no integer lies between {minimum} and {maximum}")
    alternatives = []
    if minimum is None or minimum < 0:
        low = 1 if maximum is None or maximum >= 0 else -maximum
        if minimum is None or -minimum >= low:
            negative = _naturals(low, None if minimum is None else -minimum)
            alternatives.append("-" + _group(negative))
    if maximum is None or maximum >= 0:
        alternatives.extend(_naturals(max(minimum or 0, 0), maximum))
    return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"


_MAX_SUFFIXES = 256


def regex_for_multiples(divisor: int) -> str | None:
    """The decimal integers divisible by `divisor` (a positive integer), as JSON writes them;
    None unless divisibility shows in the last digits (divisor = 2^a * 5^b, at most
    _MAX_SUFFIXES endings)."""
    if divisor == 1:
        return "(?:0|-?[1-9][0-9]*)"
    rest, twos, fives = divisor, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    digits = max(twos, fives)
    if rest != 1 or 10 ** digits // divisor > _MAX_SUFFIXES:
        return None
    small = [str(m) for m in range(divisor, 10 ** digits, divisor)]
    endings = [f"{m:0{digits}d}" for m in range(0, 10 ** digits, divisor)]
    long = f"[1-9][0-9]*{_group(endings)}" if len(endings) > 1 else f"[1-9][0-9]*{endings[0]}"
    return f"(?:0|-?(?:{'|'.join([*small, long])}))"


def _group(alternatives: Sequence[str]) -> str:
    return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"


def _naturals(lo: int, hi: int | None) -> list[str]:
    """Alternatives for the numerals of lo..hi (hi None: unbounded), lo >= 0."""
    out: list[str] = []
    top = len(str(lo)) if hi is None else len(str(hi))
    for length in range(len(str(lo)), top + 1):
        a = max(lo, 10 ** (length - 1) if length > 1 else 0)
        b = 10 ** length - 1 if hi is None else min(hi, 10 ** length - 1)
        if a <= b:
            out.extend(_same_length(str(a), str(b)))
    if hi is None:
        out.append(f"[1-9][0-9]{{{len(str(lo))},}}")
    return out


def _same_length(a: str, b: str) -> list[str]:
    """Alternatives for the digit strings from a to b, both of the same length."""
    if a == b:
        return [a]
    if len(a) == 1:
        return [f"[{a}-{b}]"]
    if a[0] == b[0]:
        return [a[0] + _group(_same_length(a[1:], b[1:]))]
    k = len(a) - 1
    digits = "[0-9]" if k == 1 else f"[0-9]{{{k}}}"
    out, first, last = [], int(a[0]), int(b[0])
    if a[1:] != "0" * k:
        out.append(a[0] + _group(_same_length(a[1:], "9" * k)))
        first += 1
    tail = None
    if b[1:] != "9" * k:
        tail = b[0] + _group(_same_length("0" * k, b[1:]))
        last -= 1
    if first <= last:
        out.append((str(first) if first == last else f"[{first}-{last}]") + digits)
    return out + ([tail] if tail else [])


__all__ = ["escape_literal", "regex_for_choices", "regex_for_int_range", "regex_for_multiples"]
