"""One canonical regex per constraint (`canonical_regex`; `sglc.ir.passes.constraints` sets
them on every `gen`):

    int, float, bool   values.INT_REGEX, FLOAT_REGEX, BOOL_REGEX (what `parse_generated` reads)
    str                None (any text), or [\\s\\S]{0,N} with a length bound
    regex              the pattern as written, once `check_regex` accepts it
    choice             (a|b|c), each option escaped
    schema, json       outlines-core's regex of the JSON schema (`{}` for json), after
                       `regex_for_schema` validated and normalised it

plus the pieces they are made of (escaped literals, integer ranges). The dialect they are
written in is `regex.py`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sglc.constraints.regex import ConstraintError, check_regex

_SPECIAL = frozenset("\\.^$|?*+()[]{}")


def escape_literal(text: str) -> str:
    """Escape the characters that are special in both Python `re` and Rust `regex`."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def regex_for_type(kind: str, max_len: int | None = None) -> str | None:
    """The canonical regex of a value type: int, float, bool (what `parse_generated` reads),
    str (None: any text; `max_len` bounds its length in characters) or json (any JSON)."""
    from sglc.ir.values import BOOL_REGEX, FLOAT_REGEX, INT_REGEX  # sglc.ir imports this module

    scalars = {"int": INT_REGEX, "float": FLOAT_REGEX, "bool": BOOL_REGEX}
    if max_len is not None and kind != "str":
        raise ConstraintError(f"a length bound applies to str, not {kind}")
    if kind in scalars:
        return scalars[kind]
    if kind == "json":
        from sglc.constraints.schema import regex_for_schema  # builds on this module

        return regex_for_schema({})
    if kind != "str":
        raise ConstraintError(f"unknown constraint type {kind!r}",
                              hint="int, float, bool, str or json")
    if max_len is None:
        return None
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
        raise ConstraintError(f"a length bound must be a non-negative integer, not {max_len!r}")
    return rf"[\s\S]{{0,{max_len}}}"


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


def canonical_regex(kind: str, *, pattern: str | None = None, choices: Sequence[str] = (),
                    schema: dict[str, Any] | str | None = None, max_len: int | None = None,
                    whitespace: str = "compact") -> str | None:
    """The one canonical regex of a constraint (None: any text). `kind` is a constraint kind:
    int, float, bool, str (`max_len`), regex (`pattern`, checked and kept as written), choice
    (`choices`), schema (`schema`, a dict or its JSON text) or json."""
    from sglc.constraints.schema import regex_for_schema  # it builds on this module

    if kind == "regex":
        if pattern is None:
            raise ConstraintError("a regex constraint needs a pattern")
        check_regex(pattern)
        return pattern
    if kind == "choice":
        return regex_for_choices(choices)
    if kind == "schema":
        if schema is None:
            raise ConstraintError("a schema constraint needs a schema")
        return regex_for_schema(schema, whitespace)
    if kind == "json":
        return regex_for_schema({}, whitespace)
    return regex_for_type(kind, max_len)


__all__ = ["canonical_regex", "escape_literal", "regex_for_choices", "regex_for_int_range",
           "regex_for_type"]
