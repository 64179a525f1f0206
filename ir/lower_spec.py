"""A spec condition's regular fragment as a spec term (`sglc.ir.spec_terms`), read off the
AST: what the spec pass proves, refutes or pushes into a gen's constraint. The condition's
instructions are lowered as usual beside it, for the run-time check."""

from __future__ import annotations

from collections.abc import Callable

from sglc.frontend import ast as A
from sglc.frontend.consts import NotConstant
from sglc.ir.spec_terms import COMPARISONS, FALSE, FLIPPED, TRUE, Subject, Term

Constant = Callable[[A.Expr], object]
"""The value of a constant expression (literals, module constants), NotConstant else."""


def spec_term(e: A.Expr, constant: Constant) -> Term:
    """The term of a condition; parts outside the fragment are ("opaque", why)."""
    if isinstance(e, A.BoolOp):
        return (e.op, *(spec_term(v, constant) for v in e.values))
    if isinstance(e, A.UnaryOp) and e.op == "not":
        return ("not", spec_term(e.operand, constant))
    if isinstance(e, A.Bool):
        return TRUE if e.value else FALSE
    if isinstance(e, A.Compare):
        return _compare(e, constant)
    if isinstance(e, A.Call):
        return _call(e, constant)
    return ("opaque", f"{type(e).__name__.lower()} expressions are not regular")


def subject_of(e: A.Expr) -> Subject | None:
    """`v` or `v.field.field` (a variable and a field path), else None."""
    if isinstance(e, A.Name):
        return (e.id,)
    if isinstance(e, A.Attribute):
        inner = subject_of(e.value)
        return None if inner is None else (*inner, e.attr)
    return None


def _compare(e: A.Compare, constant: Constant) -> Term:
    operands = (e.left, *e.comparators)
    parts = [_comparison(a, op, b, constant)
             for a, op, b in zip(operands, e.ops, operands[1:], strict=False)]
    return parts[0] if len(parts) == 1 else ("and", *parts)


def _comparison(left: A.Expr, op: str, right: A.Expr, constant: Constant) -> Term:
    if op in ("in", "not in"):
        subject, values = subject_of(left), _value(right, constant)
        if subject is None or not isinstance(values, list) \
                or not all(_is_scalar(v) for v in values):
            return ("opaque", "`in` is regular on a value and a constant list")
        term: Term = ("in", subject, tuple(values))
        return ("not", term) if op == "not in" else term
    if op not in COMPARISONS:
        return ("opaque", f"`{op}` is not regular")
    for a, o, b in ((left, op, right), (right, FLIPPED[op], left)):
        value = _value(b, constant)
        if not _is_scalar(value):
            continue
        length = _len_of(a)
        if length is not None and isinstance(value, int) and not isinstance(value, bool):
            return ("len", length, o, value)
        subject = subject_of(a)
        if subject is not None and not isinstance(value, bool):
            return ("cmp", subject, o, value)
    if isinstance(left, A.BinOp) or isinstance(right, A.BinOp):
        return ("opaque", "arithmetic on a value is not regular")
    if not _is_scalar(_value(left, constant)) and not _is_scalar(_value(right, constant)):
        return ("opaque", "it relates several values (a regular spec compares one value, or "
                "its len, with a constant)")
    return ("opaque", "a comparison is regular between a value (or its len) and a constant")


def _call(e: A.Call, constant: Constant) -> Term:
    if isinstance(e.func, A.Name) and e.func.id == "matches" and len(e.args) == 2:
        subject = subject_of(e.args[0])
        if subject is not None and isinstance(e.args[1], A.Regex):
            return ("matches", subject, e.args[1].pattern)
    if isinstance(e.func, A.Attribute) and e.func.attr in ("startswith", "endswith") \
            and len(e.args) == 1 and not e.kwargs:
        subject = subject_of(e.func.value)
        text = _value(e.args[0], constant)
        if subject is not None and isinstance(text, str):
            return (e.func.attr, subject, text)
    name = e.func.id if isinstance(e.func, A.Name) else getattr(e.func, "attr", "a call")
    return ("opaque", f"`{name}(...)` is not a regular predicate")


def _len_of(e: A.Expr) -> Subject | None:
    if isinstance(e, A.Call) and isinstance(e.func, A.Name) and e.func.id == "len" \
            and len(e.args) == 1 and not e.kwargs:
        return subject_of(e.args[0])
    return None


def _value(e: A.Expr, constant: Constant) -> object:
    try:
        return constant(e)
    except NotConstant:
        return _NOT_CONSTANT


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, int, float)) and value is not _NOT_CONSTANT


_NOT_CONSTANT = object()


__all__ = ["spec_term", "subject_of"]
