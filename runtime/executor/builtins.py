"""Value operations of the IR with SGL-level errors: builtins, methods, operators.

Python semantics throughout (as the IR specifies); a Python exception becomes a message
about the SGL program ("index 5 is out of range for a list of 3 items"), which the
interpreter locates in the source.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from sglc.ir import to_text


class ValueOpError(Exception):
    """A value operation failed; the message is for the user."""


BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
COMPARES: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}
UNARY: dict[str, Callable[[Any], Any]] = {
    "-": operator.neg,
    "+": operator.pos,
    "not": operator.not_,
}

STR_METHODS = frozenset(
    {
        "strip",
        "lower",
        "upper",
        "split",
        "startswith",
        "endswith",
        "replace",
        "join",
        "find",
        "count",
    }
)
LIST_METHODS = frozenset({"append", "pop", "extend", "index", "count"})
DICT_METHODS = frozenset({"get", "keys", "values"})


def type_name(value: Any) -> str:
    if value is None:
        return "None"
    return {dict: "dict", list: "list", str: "str", bool: "bool", int: "int", float: "float"}.get(
        type(value), type(value).__name__
    )


def guarded(what: str, fn: Callable[[], Any]) -> Any:
    """Run a value operation; Python failures become ValueOpError with a plain message."""
    try:
        return fn()
    except ValueOpError:
        raise
    except ZeroDivisionError:
        raise ValueOpError(f"{what}: division by zero") from None
    except IndexError as exc:
        raise ValueOpError(f"{what}: {exc}") from None
    except KeyError as exc:
        raise ValueOpError(f"{what}: no key {exc.args[0]!r}") from None
    except (TypeError, ValueError, OverflowError, AttributeError, re.error) as exc:
        raise ValueOpError(f"{what}: {exc}") from None


def index(obj: Any, key: Any) -> Any:
    if isinstance(obj, (list, str)):
        if not isinstance(key, int) or isinstance(key, bool):
            raise ValueOpError(f"a {type_name(obj)} index must be an int, not {type_name(key)}")
        if not -len(obj) <= key < len(obj):
            raise ValueOpError(
                f"index {key} is out of range for a {type_name(obj)} of "
                f"{len(obj)} item{'s' * (len(obj) != 1)}"
            )
        return obj[key]
    if isinstance(obj, dict):
        if key not in obj:
            keys = ", ".join(repr(k) for k in list(obj)[:8])
            raise ValueOpError(f"key {key!r} is not in the dict (keys: {keys})")
        return obj[key]
    raise ValueOpError(f"cannot index a {type_name(obj)}")


def attr(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        if name not in obj:
            raise ValueOpError(
                f"the value has no field '{name}' (fields: {', '.join(map(str, obj)) or 'none'})"
            )
        return obj[name]
    raise ValueOpError(f"a {type_name(obj)} has no field '{name}'")


def call_method(obj: Any, method: str, args: list[Any]) -> Any:
    allowed = (
        STR_METHODS
        if isinstance(obj, str)
        else LIST_METHODS
        if isinstance(obj, list)
        else DICT_METHODS
        if isinstance(obj, dict)
        else frozenset()
    )
    if method not in allowed:
        raise ValueOpError(f"a {type_name(obj)} has no method '{method}'")
    result = guarded(f"{method}()", lambda: getattr(obj, method)(*args))
    if isinstance(obj, dict) and method in ("keys", "values"):
        return list(result)
    return result


def _print(out: Callable[[str], None], args: list[Any], kwargs: dict[str, Any]) -> None:
    sep, end = kwargs.get("sep", " "), kwargs.get("end", "\n")
    out(to_text(sep).join(to_text(a) for a in args) + to_text(end))


def _int(value: Any) -> int:
    try:
        return int(value.strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ValueOpError(f"int() cannot read {value!r}") from None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueOpError(f"float() cannot read {value!r}") from None


def _matches(value: Any, pattern: Any) -> bool:
    return re.fullmatch(pattern, to_text(value)) is not None


def _range(*args: Any) -> list[int]:
    return list(range(*args))


def _list(value: Any) -> list:
    return list(value)


PURE_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len,
    "range": _range,
    "str": to_text,
    "int": _int,
    "float": _float,
    "bool": bool,
    "matches": _matches,
    "min": min,
    "max": max,
    "sum": sum,
    "abs": abs,
    "sorted": sorted,
    "list": _list,
}


def call_builtin(
    name: str, args: list[Any], kwargs: dict[str, Any], out: Callable[[str], None]
) -> Any:
    if name == "print":
        _print(out, args, kwargs)
        return None
    fn = PURE_BUILTINS.get(name)
    if fn is None:
        raise ValueOpError(f"unknown builtin '{name}'")
    return guarded(f"{name}()", lambda: fn(*args, **kwargs))
