"""Calling SGL fns from outside: which fns a program offers, how arguments bind, and the
check of their values against the declared types (at the boundary: Python, the CLI, a
server request; inside a program the checker has already typed every call)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from sglc import ir
from sglc.ir.value_types import value_error
from sglc.lang import GEN_PARAMS
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


def split_defaults(
    fn: ir.IRFunction, kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword arguments of an outside call -> (the fn's arguments, call-level gen defaults):
    a name of one of the fn's params binds it; any other name of a gen parameter
    (`temperature=0.7`) is a default for every gen the call runs."""
    params = {p.name for p in fn.params}
    args = {k: v for k, v in kwargs.items() if k in params or k not in GEN_PARAMS}
    return args, {k: v for k, v in kwargs.items() if k not in args}


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
            raise ArgumentError(
                f"{name}() has no parameter '{key}'",
                hint=f"parameters: {hint}; gen parameters ({', '.join(GEN_PARAMS)}) are "
                "call-level defaults",
            )
        if key in values:
            raise ArgumentError(f"{name}() got two values for '{key}'")
        values[key] = value
    for p in params:
        if p.name not in values:
            if not p.has_default:
                raise ArgumentError(f"{name}() is missing the argument '{p.name}' ({p.type})")
            values[p.name] = copy.deepcopy(p.default)
    return values


def check_arguments(fn: ir.IRFunction, values: dict[str, Any], program: ir.IRProgram) -> None:
    """Each argument against its parameter's declared type; an ArgumentError located at the
    parameter's declaration for the first that does not fit."""
    for p in fn.params:
        problem = value_error(values.get(p.name), p.type, program.schemas)
        if problem is not None:
            span = p.span if p.span.line else None
            raise ArgumentError(
                f"argument '{p.name}' of {short_name(fn)}() {problem}", span,
                hint=f"'{p.name}' is declared {p.type}",
            )
