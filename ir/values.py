"""How IR values become text and how generated text becomes a value: one place for both.

The executor uses these for `Append`, `Format`, `str()` and `Gen`; the constraint pass's
regexes accept exactly the texts `parse_generated` accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sglc.constraints import BOOL_REGEX, FLOAT_REGEX, INT_REGEX
from sglc.lang.values import to_text


def const_repr(value: Any) -> str:
    """A constant as the IR text form writes it: JSON strings, `true`, `none`, numbers."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


class ParseError(ValueError):
    """Generated text that its value type does not accept."""


def parse_generated(value_type: str, text: str) -> Any:
    """The value a `gen` binds for `text`: str as is; int/float/bool exactly the texts their
    canonical regexes (`sglc.constraints.INT_REGEX`, ...) accept; json by `json.loads`."""
    try:
        return _PARSERS[value_type](text)
    except (ValueError, KeyError) as exc:
        raise ParseError(f"cannot read {text!r} as {value_type}") from exc


def _parse_bool(text: str) -> bool:
    if re.fullmatch(BOOL_REGEX, text) is None:
        raise ValueError(text)
    return text == "true"


def _parse_int(text: str) -> int:
    if re.fullmatch(INT_REGEX, text) is None:
        raise ValueError(text)
    return int(text)


def _parse_float(text: str) -> float:
    if re.fullmatch(FLOAT_REGEX, text) is None:
        raise ValueError(text)
    return float(text)


_PARSERS = {
    "str": lambda text: text,
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "json": json.loads,
}

__all__ = ["ParseError", "const_repr", "parse_generated", "to_text"]
