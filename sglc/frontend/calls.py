"""Typing calls against their signatures: the arguments of fns, builtins and methods (the
records of sglc.lang), the fields of a schema built from parts (`Person(name=n, age=a)`),
and the parameters of `gen` and `select`.

Builtins and methods follow Python's convention (positional-only parameters, then `*rest`,
then keyword-only parameters); SGL fns take each parameter by position or by keyword.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sglc.frontend import ast as A
from sglc.frontend.consts import NotConstant, constant_value
from sglc.frontend.symbols import ConstInfo, suggest
from sglc.lang import (
    ArgTypeError,
    ArgTypes,
    Builtin,
    GenParam,
    Param,
    SelectParam,
    find_method,
    methods_of,
    receiver_kind,
    result_type,
)
from sglc.lang.methods import receiver_vars
from sglc.lang.signatures import ResultRule
from sglc.lang.types import NONE, UNKNOWN, OptionalT, SchemaInfo, SchemaT, Type, assignable
from sglc.source import DiagnosticSink


class Typer(Protocol):
    """What call typing needs of the expression typer."""

    sink: DiagnosticSink
    types: dict[object, Type]
    constants: dict[object, ConstInfo]

    def check(self, e: A.Expr) -> Type: ...

    def expect(self, e: A.Expr, want: Type, what: str) -> Type: ...

    def binding_type(self, e: A.Expr, what: str) -> Type: ...


def bind_args(typer: Typer, what: str, e: A.Call, params: Sequence[Param], *,
              positional_only: bool = False, rest: Type | None = None,
              keywords: Sequence[Param] = ()) -> dict[str, A.Expr]:
    """Check a call's arity, keywords and argument types; return the argument bound to
    each parameter (by name). `rest` types the positional arguments after `params`;
    `keywords` are keyword-only."""
    if len(e.args) > len(params) and rest is None:
        extra = e.args[len(params)]
        typer.sink.error(f"{what} takes {len(params)} positional argument"
                         f"{'s' if len(params) != 1 else ''} but {len(e.args)} were given",
                         extra.span, None, "arity")
    bound: dict[str, A.Expr] = {p.name: arg for p, arg in zip(params, e.args, strict=False)}
    by_keyword = [p.name for p in (*([] if positional_only else params), *keywords)]
    by_position = [p.name for p in params] if positional_only else []
    for kw in e.kwargs:
        _bind_keyword(typer, what, kw, by_keyword, by_position, bound)
    for p in [*params, *keywords]:
        if p.name in bound and p.form == "binding":
            typer.types[bound[p.name]] = typer.binding_type(bound[p.name], what)
        elif p.name in bound:
            arg = bound[p.name]
            typer.expect(arg, p.type, f"argument '{p.name}' of {what}")
            if p.form == "constant" and not (isinstance(arg, A.Regex) or arg in typer.constants):
                typer.sink.error(f"{what} needs a regex literal /.../ as its {p.name}",
                                 arg.span, "write the pattern inline, e.g. /[0-9]+/, or make it "
                                 "a top-level constant: let R = /.../", "type-mismatch")
        elif not p.has_default:
            hint = None if positional_only else f"pass it as {p.name}=..."
            typer.sink.error(f"{what} is missing argument '{p.name}'", e.span, hint, "arity")
    for arg in e.args[len(params):]:
        if rest is None:
            typer.check(arg)
        else:
            typer.expect(arg, rest, f"an argument of {what}")
    return bound


def _bind_keyword(typer: Typer, what: str, kw: A.Keyword, by_keyword: list[str],
                  by_position: list[str], bound: dict[str, A.Expr]) -> None:
    """Bind `name=value` (reporting a keyword the signature does not take by keyword)."""
    if kw.name in bound:
        typer.sink.error(f"{what} got parameter '{kw.name}' twice", kw.name_span, None,
                         "duplicate-keyword")
    elif kw.name in by_keyword or kw.name in by_position:
        if kw.name in by_position:
            _keyword_error(typer, what, kw, by_keyword)
        bound[kw.name] = kw.value
        return
    elif by_keyword:
        typer.sink.error(f"{what} has no parameter '{kw.name}'", kw.name_span,
                         suggest(kw.name, by_keyword) or f"parameters: {', '.join(by_keyword)}",
                         "unknown-keyword")
    else:
        _keyword_error(typer, what, kw, by_keyword)
    typer.check(kw.value)


def _keyword_error(typer: Typer, what: str, kw: A.Keyword, by_keyword: list[str]) -> None:
    message = f"{what} takes '{kw.name}' by position" if by_keyword else \
        f"{what} takes no keyword arguments"
    typer.sink.error(message, kw.name_span, "pass the arguments by position", "unknown-keyword")


def builtin_call_type(typer: Typer, builtin: Builtin, e: A.Call) -> Type:
    """Check a call of a builtin; its result type (by the builtin's record)."""
    what = f"{builtin.name}()"
    bound = bind_args(typer, what, e, builtin.params, positional_only=True, rest=builtin.rest,
                      keywords=builtin.keywords)
    return _result(typer, builtin.result, ArgTypes(builtin.name, _types(typer, bound)), bound,
                   e)


def method_call_type(typer: Typer, receiver: Type, attr: A.Attribute, e: A.Call) -> Type:
    """Check `receiver.name(...)` for a str, list or dict receiver; its result type."""
    kind = receiver_kind(receiver)
    method = find_method(kind, attr.attr)
    if method is None:
        names = methods_of(kind)
        hint = suggest(attr.attr, names) or f"methods: {', '.join(names)}"
        typer.sink.error(f"{receiver} has no method '{attr.attr}'", attr.attr_span, hint,
                         "unknown-attribute")
        for arg in [*e.args, *(k.value for k in e.kwargs)]:
            typer.check(arg)
        return UNKNOWN
    bound = bind_args(typer, f"{attr.attr}()", e, method.params_for(receiver),
                      positional_only=True)
    args = ArgTypes(method.name, _types(typer, bound), receiver_vars(receiver))
    return _result(typer, method.result, args, bound, e)


def _types(typer: Typer, bound: dict[str, A.Expr]) -> dict[str, Type]:
    return {name: typer.types.get(arg, UNKNOWN) for name, arg in bound.items()}


def _result(typer: Typer, result: Type | ResultRule, args: ArgTypes,
            bound: dict[str, A.Expr], e: A.Call) -> Type:
    try:
        return result_type(result, args)
    except ArgTypeError as err:
        at = bound[err.param].span if err.param in bound else e.span
        typer.sink.error(err.message, at, None, "type-mismatch")
        return err.fallback


# ---- schema values built from parts --------------------------------------------------------


def schema_call_type(typer: Typer, info: SchemaInfo, e: A.Call) -> Type:
    """`Person(name=n, age=a)`: every field by keyword, of its type; an optional field
    (`T | None`) may be left out (it is None)."""
    what = f"{info.name}(...)"
    for arg in e.args:
        typer.check(arg)
        typer.sink.error(f"{what} takes its fields by name", arg.span,
                         f"name it: {info.name}({', '.join(f'{f}=...' for f in info.fields)})",
                         "arity")
    given: set[str] = set()
    for kw in e.kwargs:
        field = info.fields.get(kw.name)
        if field is None:
            typer.check(kw.value)
            typer.sink.error(f"schema {info.name} has no field '{kw.name}'", kw.name_span,
                             suggest(kw.name, info.fields) or
                             f"fields: {', '.join(info.fields)}", "unknown-keyword")
        elif kw.name in given:
            typer.check(kw.value)
            typer.sink.error(f"field '{kw.name}' given twice", kw.name_span, None,
                             "duplicate-keyword")
        else:
            typer.expect(kw.value, field, f"field '{kw.name}' of {info.name}")
        given.add(kw.name)
    missing = [n for n, t in info.fields.items()
               if n not in given and not (isinstance(t, OptionalT) or t == NONE)]
    if missing:
        typer.sink.error(f"{what} is missing field{'s' * (len(missing) > 1)} "
                         f"{', '.join(repr(m) for m in missing)}", e.span,
                         f"pass {missing[0]}=...", "arity")
    return SchemaT(info)


# ---- gen and select parameters -------------------------------------------------------------


def check_param(typer: Typer, param: GenParam | SelectParam, kw: A.Keyword,
                what: str = "gen") -> None:
    """Type of one `gen` (or `select`) parameter and, for a constant, its value (the rule
    SamplingParams applies, in the same words)."""
    got = typer.check(kw.value)
    if not any(assignable(got, t) for t in param.types):
        typer.sink.error(f"{what} parameter '{kw.name}' must be {param.type_text}, not {got}",
                         kw.value.span, None, "type-mismatch")
        return
    try:
        value = constant_of(typer, kw.value)
    except NotConstant:
        return
    problem = param.error(value)
    if problem is not None:
        typer.sink.error(problem, kw.value.span, None, "param-range")


check_gen_param = check_param


def constant_of(typer: Typer, e: A.Expr) -> object:
    """The value of a literal or of a name that reads a module constant (NotConstant
    otherwise). A regex's value is its pattern."""
    const = typer.constants.get(e)
    return const.value if const is not None else constant_value(e)


__all__ = ["Typer", "bind_args", "builtin_call_type", "check_gen_param", "check_param",
           "constant_of", "method_call_type", "schema_call_type"]
