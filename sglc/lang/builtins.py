"""SGL's builtin functions: one record each, read by the checker (signature, result type),
the IR verifier (names, arity) and the executor (implementation).

An implementation gets the evaluated arguments as Python values (Python semantics; a Python
exception becomes an SGL error in the executor) and may raise ValueOpError with its own
message. A builtin that `writes_output` returns the text to write and evaluates to None; one
that `reads_state` gets the running call's `CallContext` (sglc.lang.state) first. A dotted
name (`json.loads`) puts a builtin in a namespace (`json`). Adding a builtin is adding one
record to `BUILTINS`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sglc.lang.signatures import ArgTypeError, ArgTypes, Param, ResultRule
from sglc.lang.state import GEN_META, MESSAGE, SELECT_META
from sglc.lang.types import (
    BOOL,
    FLOAT,
    INT,
    JSON,
    NONE,
    REGEX,
    STR,
    BindingT,
    ListT,
    SchemaT,
    Type,
    element_type,
    is_gradual,
    is_numeric,
)
from sglc.lang.values import ValueOpError, to_text


@dataclass(frozen=True)
class Builtin:
    """One builtin: `name(*params, *rest, **keywords) -> result` (see sglc.lang.signatures
    for the calling convention), its implementation, and a one-line doc."""

    name: str
    params: tuple[Param, ...]
    result: Type | ResultRule
    impl: Callable[..., object]
    doc: str
    rest: Type | None = None  # the type of further positional arguments (print's values)
    keywords: tuple[Param, ...] = ()
    writes_output: bool = False  # impl returns text for the program's output
    reads_state: bool = False  # impl(context: CallContext, *args)

    @property
    def namespace(self) -> str | None:
        """`json` of `json.loads`; None for a plain builtin."""
        return self.name.rpartition(".")[0] or None


# ---- result rules ------------------------------------------------------------------------


def _sized(args: ArgTypes) -> Type:
    value = args["value"]
    if not is_gradual(value) and element_type(value) is None:
        raise ArgTypeError(f"{args.callee}() of {value}", "value", INT)
    return INT


def _number(args: ArgTypes) -> Type:
    value = args["value"]
    if not (is_gradual(value) or is_numeric(value)):
        raise ArgTypeError(f"{args.callee}() of {value}", "value", value)
    return value


def _items(*, numeric: bool = False, as_list: bool = False) -> ResultRule:
    """An item of the iterable argument (min, max, sum), or a list of them (sorted, list)."""

    def rule(args: ArgTypes) -> Type:
        value = args["value"]
        if is_gradual(value):
            return value
        elem = element_type(value)
        if elem is None or (numeric and not is_numeric(elem)):
            raise ArgTypeError(f"{args.callee}() needs a list, not {value}", "value")
        return ListT(elem) if as_list else elem

    return rule


def _meta(args: ArgTypes) -> Type:
    ref = args["name"]
    if not isinstance(ref, BindingT):
        return ref  # an error reported already
    if ref.kind == "select":
        return SchemaT(SELECT_META)
    return ListT(SchemaT(GEN_META)) if ref.samples else SchemaT(GEN_META)


# ---- implementations ---------------------------------------------------------------------


def _range(*args: int) -> list[int]:
    return list(range(*args))


def _int(value: object) -> int:
    try:
        return int(value.strip()) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueOpError(f"int() cannot read {value!r}") from None


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueOpError(f"float() cannot read {value!r}") from None


def _matches(value: object, pattern: str) -> bool:
    return re.fullmatch(pattern, to_text(value)) is not None


def _json_loads(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueOpError(f"json.loads() cannot read {text!r:.60}: {exc.msg} at character "
                           f"{exc.pos}") from None


def _json_dumps(value: object) -> str:
    """Compact, key order kept, non-ASCII as is; NaN and infinities are not JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueOpError(f"json.dumps() cannot write {value!r}: JSON has no such number")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise ValueOpError(f"json.dumps() cannot write the value: {exc}") from None


def _print_line(*values: object, sep: str = " ", end: str = "\n") -> str:
    return to_text(sep).join(to_text(v) for v in values) + to_text(end)


# ---- the table ---------------------------------------------------------------------------

_VALUE = (Param("value", JSON),)

BUILTINS: Mapping[str, Builtin] = MappingProxyType({b.name: b for b in (
    Builtin("len", _VALUE, _sized, len,
            "len(value) -> int: the items of a list or dict, the characters of a str"),
    Builtin("range", (Param("start", INT), Param("stop", INT, True), Param("step", INT, True)),
            ListT(INT), _range, "range(stop) / range(start, stop[, step]) -> list[int]"),
    Builtin("str", _VALUE, STR, to_text,
            "str(value) -> str: a str unchanged, anything else as Python prints it"),
    Builtin("int", _VALUE, INT, _int,
            "int(value) -> int: a str is parsed (spaces around allowed), a float truncated"),
    Builtin("float", _VALUE, FLOAT, _float, "float(value) -> float: as Python's float()"),
    Builtin("bool", _VALUE, BOOL, bool, "bool(value) -> bool: Python truthiness"),
    Builtin("print", (), NONE, _print_line,
            "print(*values, sep=' ', end='\\n'): writes str() of each value to the output",
            rest=JSON, keywords=(Param("sep", STR, True), Param("end", STR, True)),
            writes_output=True),
    Builtin("matches", (Param("value", STR), Param("pattern", REGEX, form="constant")), BOOL,
            _matches, "matches(value, /pattern/) -> bool: the whole value matches the regex"),
    Builtin("min", _VALUE, _items(), min, "min(items): the smallest item"),
    Builtin("max", _VALUE, _items(), max, "max(items): the largest item"),
    Builtin("sum", _VALUE, _items(numeric=True), sum, "sum(items): the total of the numbers"),
    Builtin("abs", _VALUE, _number, abs, "abs(number): the absolute value"),
    Builtin("sorted", _VALUE, _items(as_list=True), sorted, "sorted(items) -> list: a new "
            "sorted list"),
    Builtin("list", _VALUE, _items(as_list=True), list, "list(items) -> list: a new list of "
            "a list's items, a str's characters or a dict's keys"),
    Builtin("text", (), STR, lambda ctx: ctx.text(),
            "text() -> str: the prompt so far, as the chat template renders it",
            reads_state=True),
    Builtin("messages", (), ListT(SchemaT(MESSAGE)), lambda ctx: ctx.messages(),
            "messages() -> list[Message]: the chat turns so far (role, content), the open "
            "one included", reads_state=True),
    Builtin("meta", (Param("name", JSON, form="binding"),), _meta,
            lambda ctx, name: ctx.meta(name),
            "meta(x) -> GenMeta | SelectMeta: what gen or select x did last (finish reason, "
            "token counts, logprobs; each option's score)", reads_state=True),
    Builtin("json.loads", (Param("text", STR),), JSON, _json_loads,
            "json.loads(text) -> json: the JSON value the text spells"),
    Builtin("json.dumps", _VALUE, STR, _json_dumps,
            "json.dumps(value) -> str: the value as compact JSON (non-ASCII kept)"),
)})
"""Every builtin, by name."""


NAMESPACES = frozenset(b.namespace for b in BUILTINS.values() if b.namespace)
"""Names that group builtins (`json`)."""


__all__ = ["BUILTINS", "NAMESPACES", "Builtin"]
