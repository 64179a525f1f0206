"""Calling SGL fns from outside: which fns a program offers, how arguments bind."""

from __future__ import annotations

import copy
from typing import Any

from sglc import ir
from sglc.runtime.executor.errors import ArgumentError


def short_name(fn: ir.IRFunction) -> str:
    return fn.name.rsplit(".", 1)[-1]


def public_functions(program: ir.IRProgram) -> dict[str, ir.IRFunction]:
    """The user-callable fns of the main module, by short name."""
    prefix = f"{program.module}."
    return {
        name[len(prefix) :]: fn
        for name, fn in program.functions.items()
        if name.startswith(prefix) and fn.kind == "fn"
    }


def bind_arguments(fn: ir.IRFunction, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Parameter values for a call: positional, then by name, then (copied) defaults."""
    params = fn.params
    name = short_name(fn)
    if len(args) > len(params):
        raise ArgumentError(
            f"{name}() takes {len(params)} argument{'s' * (len(params) != 1)}, got {len(args)}"
        )
    values = {p.name: a for p, a in zip(params, args, strict=False)}
    known = {p.name for p in params}
    for key, value in kwargs.items():
        if key not in known:
            hint = ", ".join(p.name for p in params) or "none"
            raise ArgumentError(f"{name}() has no parameter '{key}'", hint=f"parameters: {hint}")
        if key in values:
            raise ArgumentError(f"{name}() got two values for '{key}'")
        values[key] = value
    for p in params:
        if p.name not in values:
            if not p.has_default:
                raise ArgumentError(f"{name}() is missing the argument '{p.name}' ({p.type})")
            values[p.name] = copy.deepcopy(p.default)
    return values
