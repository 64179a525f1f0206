"""SGL values at run time: how a value prints (`str(x)`), how its type is named in messages,
and the error a failed value operation raises (its message is for the user)."""

from __future__ import annotations


class ValueOpError(Exception):
    """A value operation (a builtin, a method, an operator) failed; the message says why in
    SGL terms ("int() cannot read 'x'")."""


def to_text(value: object) -> str:
    """SGL `str(x)`: a str unchanged; everything else as Python's `str` prints it."""
    return value if isinstance(value, str) else str(value)


_TYPE_NAMES = {dict: "dict", list: "list", str: "str", bool: "bool", int: "int", float: "float"}


def type_name(value: object) -> str:
    """The SGL name of a value's type, for messages."""
    if value is None:
        return "None"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


__all__ = ["ValueOpError", "to_text", "type_name"]
