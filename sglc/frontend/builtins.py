"""Builtin functions, methods of str/list/dict, and the parameters `gen` accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sglc.frontend import ast as A
from sglc.frontend.symbols import ParamSig
from sglc.lang.types import (
    BOOL,
    FLOAT,
    INT,
    JSON,
    NONE,
    REGEX,
    STR,
    UNKNOWN,
    DictT,
    ListT,
    OptionalT,
    Type,
    assignable,
    element_type,
    is_gradual,
    is_numeric,
    is_str,
)

if TYPE_CHECKING:
    from sglc.frontend.exprs import ExprTyper

STR_OR_LIST = "str | list[str]"

# name: (type, lowest allowed constant, highest allowed constant)
GEN_PARAMS: dict[str, tuple[Type | str, float | None, float | None]] = {
    "max_tokens": (INT, 1, None),
    "stop": (STR_OR_LIST, None, None),
    "temperature": (FLOAT, 0, None),
    "top_p": (FLOAT, 0, 1),
    "top_k": (INT, -1, None),
    "min_p": (FLOAT, 0, 1),
    "seed": (INT, 0, None),
    "frequency_penalty": (FLOAT, -2, 2),
    "presence_penalty": (FLOAT, -2, 2),
    "ignore_eos": (BOOL, None, None),
    "adapter": (STR, None, None),
}


def _p(name: str, t: Type, has_default: bool = False) -> ParamSig:
    return ParamSig(name, t, has_default)


def call_builtin(typer: ExprTyper, name: str, e: A.Call) -> Type:
    if name == "print":
        for arg in e.args:
            typer.check(arg)
        typer.check_args("print()", [_p("sep", STR, True), _p("end", STR, True)],
                         A.Call(e.func, (), e.kwargs, e.span))
        return NONE
    if name == "matches":
        typer.check_args("matches()", [_p("value", STR), _p("pattern", REGEX)], e)
        if len(e.args) > 1 and not isinstance(e.args[1], A.Regex):
            typer.sink.error("matches() needs a regex literal /.../ as its pattern",
                             e.args[1].span, "write the pattern inline: matches(x, /[0-9]+/)",
                             "type-mismatch")
        return BOOL
    if name == "range":
        params = [_p("start", INT), _p("stop", INT, True), _p("step", INT, True)]
        typer.check_args("range()", params, e)
        return ListT(INT)
    if name in ("str", "int", "float", "bool"):
        typer.check_args(f"{name}()", [_p("value", JSON)], e)
        return {"str": STR, "int": INT, "float": FLOAT, "bool": BOOL}[name]
    return _collection_builtin(typer, name, e)


def _collection_builtin(typer: ExprTyper, name: str, e: A.Call) -> Type:
    typer.check_args(f"{name}()", [_p("value", JSON)], e)
    arg = typer.types.get(e.args[0], UNKNOWN) if e.args else UNKNOWN
    if is_gradual(arg):
        return INT if name == "len" else arg
    elem = element_type(arg)
    if name == "len":
        if elem is None:
            typer.sink.error(f"len() of {arg}", e.args[0].span, None, "type-mismatch")
        return INT
    if name == "abs":
        if not is_numeric(arg):
            typer.sink.error(f"abs() of {arg}", e.args[0].span, None, "type-mismatch")
        return arg
    if elem is None or (name in ("sum",) and not is_numeric(elem)):
        typer.sink.error(f"{name}() needs a list, not {arg}", e.args[0].span, None,
                         "type-mismatch")
        return UNKNOWN
    return ListT(elem) if name == "sorted" else elem


def call_method(typer: ExprTyper, owner: Type, attr: A.Attribute, e: A.Call) -> Type:
    from sglc.frontend.exprs import STR_METHODS, suggest

    names = typer.method_names(owner)
    what = f"{attr.attr}()"
    if attr.attr not in names:
        hint = suggest(attr.attr, names) or f"methods: {', '.join(names)}"
        typer.sink.error(f"{owner} has no method '{attr.attr}'", attr.attr_span, hint,
                         "unknown-attribute")
        for arg in [*e.args, *(k.value for k in e.kwargs)]:
            typer.check(arg)
        return UNKNOWN
    if is_str(owner):
        params, required, result = STR_METHODS[attr.attr]
        sig = [_p(f"arg{i + 1}", t, i >= required) for i, t in enumerate(params)]
        typer.check_args(what, sig, e)
        return result
    if isinstance(owner, ListT):
        elem = owner.elem
        table = {
            "append": ([_p("item", elem)], NONE), "pop": ([_p("index", INT, True)], elem),
            "extend": ([_p("items", owner)], NONE), "index": ([_p("item", elem)], INT),
            "count": ([_p("item", elem)], INT),
        }
        sig, result = table[attr.attr]
        typer.check_args(what, sig, e)
        return result
    assert isinstance(owner, DictT)
    if attr.attr == "get":
        typer.check_args(what, [_p("key", owner.key), _p("default", owner.value, True)], e)
        return owner.value if len(e.args) > 1 else OptionalT(owner.value)
    typer.check_args(what, [], e)
    return ListT(owner.key if attr.attr == "keys" else owner.value)


def check_gen_param(typer: ExprTyper, kw: A.Keyword) -> None:
    """Type and (for constants) range of one `gen` parameter."""
    want, low, high = GEN_PARAMS[kw.name]
    got = typer.check(kw.value)
    if want == STR_OR_LIST:
        if not (assignable(got, STR) or assignable(got, ListT(STR))):
            typer.sink.error(f"gen parameter 'stop' must be {STR_OR_LIST}, not {got}",
                             kw.value.span, None, "type-mismatch")
        return
    assert isinstance(want, Type)
    if not assignable(got, want):
        typer.sink.error(f"gen parameter '{kw.name}' must be {want}, not {got}", kw.value.span,
                         None, "type-mismatch")
        return
    value = _constant_number(kw.value)
    if value is None:
        return
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        typer.sink.error(f"gen parameter '{kw.name}' must be {bounds}, not {value}",
                         kw.value.span, None, "param-range")


def _constant_number(e: A.Expr) -> float | None:
    if isinstance(e, (A.Int, A.Float)):
        return e.value
    if isinstance(e, A.UnaryOp) and e.op == "-" and isinstance(e.operand, (A.Int, A.Float)):
        return -e.operand.value
    return None
