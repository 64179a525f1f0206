"""Ranges over exponent-free decimal texts as regexes: the texts t of
`-?(0|[1-9][0-9]*)(\\.[0-9]+)?` with `float(t) op c`, exactly (`decimal_regex`). With an
exponent the comparison is not regular (it relates the exponent's value to the count of
digits), so float specs are checked on the exponent-free texts only (`languages.py`)."""

from __future__ import annotations

from decimal import Decimal

from sglc.constraints import regex_for_int_range

DECIMAL_TEXTS = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?"
_FRAC = r"(\.[0-9]+)?"
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}


def decimal_regex(op: str, c: float | int) -> str | None:
    """The exponent-free decimal texts whose value `op` c (op in < <= > >= ==), as a regex;
    None when there is none."""
    value = Decimal(repr(c)) if isinstance(c, float) else Decimal(c)
    parts = [p for p in (_nonneg(op, value), _negated(op, value)) if p is not None]
    return "|".join(f"(?:{p})" for p in parts) or None


def _negated(op: str, c: Decimal) -> str | None:
    """'-' t with -value(t) op c, i.e. value(t) FLIP(op) -c."""
    inner = _nonneg(_FLIP[op], -c)
    return None if inner is None else f"-(?:{inner})"


def _nonneg(op: str, c: Decimal) -> str | None:
    """Texts without a sign (value >= 0) whose value op c."""
    if c < 0:
        return _any_nonneg() if op in (">", ">=") else None
    whole, frac = _split(c)
    parts: list[str] = []
    if op in (">", ">="):
        parts.append(f"(?:{regex_for_int_range(whole + 1, None)}){_FRAC}")
        parts.append(f"{whole}\\.(?:{_frac_greater(frac)})")
    if op in ("<", "<="):
        if whole > 0:
            parts.append(f"(?:{regex_for_int_range(0, whole - 1)}){_FRAC}")
        if frac:
            less = _frac_less(frac)
            parts.append(f"{whole}(?:\\.(?:{less}))?" if less else f"{whole}")
    if op in ("<=", ">=", "=="):
        parts.append(f"{whole}\\.{frac}0*" if frac else f"{whole}(?:\\.0+)?")
    return "|".join(f"(?:{p})" for p in parts) or None


def _any_nonneg() -> str:
    return r"(0|[1-9][0-9]*)(\.[0-9]+)?"


def _split(c: Decimal) -> tuple[int, str]:
    """c >= 0 as its whole part and its fraction digits without trailing zeros."""
    text = format(c, "f")
    whole, _, frac = text.partition(".")
    return int(whole), frac.rstrip("0")


def _frac_greater(f: str) -> str:
    """Non-empty digit strings b with 0.b > 0.f (f without trailing zeros)."""
    alts = [f"{f[:k]}[{int(f[k]) + 1}-9][0-9]*" for k in range(len(f)) if f[k] != "9"]
    alts.append(f"{f}[0-9]*[1-9][0-9]*")
    return "|".join(alts)


def _frac_less(f: str) -> str | None:
    """Non-empty digit strings b with 0.b < 0.f (f non-empty, without trailing zeros)."""
    alts = [f"{f[:k]}[0-{int(f[k]) - 1}][0-9]*" for k in range(len(f)) if f[k] != "0"]
    alts += [f"{f[:k]}0*" for k in range(1, len(f))]
    return "|".join(alts) or None


__all__ = ["DECIMAL_TEXTS", "decimal_regex"]
