"""Value operations of the IR with SGL-level errors: operators, indexing, fields, and calls
of the builtins and methods defined in sglc.lang (each record carries its implementation).

Python semantics throughout (as the IR specifies); a Python exception becomes a message
about the SGL program ("index 5 is out of range for a list of 3 items"), which the
interpreter locates in the source.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from sglc.lang import (
    BUILTINS,
    CallContext,
    ValueOpError,
    find_method,
    to_text,
    type_name,
    value_kind,
)

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
    """`obj.method(*args)` by the method table (sglc.lang.methods)."""
    record = find_method(value_kind(obj), method)
    if record is None:
        raise ValueOpError(f"a {type_name(obj)} has no method '{method}'")
    return guarded(f"{method}()", lambda: record.impl(obj, *args))


def call_builtin(
    name: str, args: list[Any], kwargs: dict[str, Any], out: Callable[[str], None],
    context: CallContext | None = None,
) -> Any:
    """`name(*args, **kwargs)` by the builtin table (sglc.lang.builtins); `out` receives
    what an output-writing builtin (print) writes; a state-reading one (text(), meta(x))
    gets the running call's `context`."""
    builtin = BUILTINS.get(name)
    if builtin is None:
        raise ValueOpError(f"unknown builtin '{name}'")
    if builtin.reads_state:
        if context is None:
            raise ValueOpError(f"{name}() reads the running call's state, and there is none")
        args = [context, *args]
    value = guarded(f"{name}()", lambda: builtin.impl(*args, **kwargs))
    if builtin.writes_output:
        out(to_text(value))
        return None
    return value


__all__ = [
    "BINOPS", "COMPARES", "UNARY", "ValueOpError", "attr", "call_builtin", "call_method",
    "guarded", "index", "type_name",
]
