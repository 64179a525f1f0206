"""What builtins and methods declare about their arguments, and how a result type follows
from the argument types.

A signature follows Python's calling convention for builtins: `params` are positional-only
(`len(value, /)`), then `rest` takes any further positional arguments (`*values`), then
`keywords` are keyword-only with defaults (`sep=" "`). A result is a `Type`, possibly with
the receiver's type variables (`list[T].pop() -> T`), or a `ResultRule` that computes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sglc.lang.types import UNKNOWN, Type, substitute

ArgForm = Literal["value", "constant", "binding"]
"""How an argument must be written: any expression of its type (`value`); a literal or a
module constant, so static checks can read it (`constant`: the pattern of `matches`); the
name of a gen or select of the same fn, passed as that name (`binding`: `meta(x)`)."""


@dataclass(frozen=True)
class Param:
    """One declared argument: its name, type, whether it may be left out, and how it must
    be written (`form`)."""

    name: str
    type: Type
    has_default: bool = False
    form: ArgForm = "value"


@dataclass(frozen=True)
class ArgTypes:
    """What a result rule sees: the callee's name, the static type of each given argument
    by parameter name (absent ones are left out), the type variables a method's receiver
    binds (`T` of `list[T]`)."""

    callee: str
    given: Mapping[str, Type]
    vars: Mapping[str, Type] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Type:
        return self.given.get(name, UNKNOWN)

    def __contains__(self, name: str) -> bool:
        return name in self.given


class ArgTypeError(Exception):
    """An argument a result rule cannot accept: reported at that argument, after which the
    call has type `fallback` (so one mistake does not cascade)."""

    def __init__(self, message: str, param: str, fallback: Type = UNKNOWN) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.fallback = fallback


ResultRule = Callable[[ArgTypes], Type]
"""Computes a call's result type from its arguments' types; may raise ArgTypeError."""


def result_type(result: Type | ResultRule, args: ArgTypes) -> Type:
    """A declared result (a type, with the receiver's type variables bound) or a rule's."""
    if isinstance(result, Type):
        return substitute(result, args.vars)
    return result(args)


__all__ = ["ArgForm", "ArgTypeError", "ArgTypes", "Param", "ResultRule", "result_type"]
