"""Constant expressions: the value of a literal written in the source, for every place that
needs one before run time (param defaults, module constants, `with` defaults, constant gen
and select arguments, `schema({...})`)."""

from __future__ import annotations

from sglc.frontend import ast as A


class NotConstant(Exception):
    """An expression that is not a constant; `node` is the part that is not."""

    def __init__(self, node: A.Expr) -> None:
        super().__init__("not a constant")
        self.node = node


def constant_value(e: A.Expr) -> object:
    """The value of a literal: numbers (with a sign), strings without holes, bools, None, a
    regex (its pattern), and lists and dicts of those. NotConstant otherwise."""
    if isinstance(e, (A.Int, A.Float, A.Str, A.Bool)):
        return e.value
    if isinstance(e, A.NoneLit):
        return None
    if isinstance(e, A.Regex):
        return e.pattern
    if isinstance(e, A.UnaryOp) and e.op in ("+", "-") and isinstance(e.operand, (A.Int, A.Float)):
        return -e.operand.value if e.op == "-" else e.operand.value
    if isinstance(e, A.ListLit):
        return [constant_value(i) for i in e.items]
    if isinstance(e, A.DictLit):
        return {constant_value(k): constant_value(v) for k, v in e.items}
    raise NotConstant(e)


def is_constant(e: A.Expr) -> bool:
    try:
        constant_value(e)
    except NotConstant:
        return False
    return True


__all__ = ["NotConstant", "constant_value", "is_constant"]
