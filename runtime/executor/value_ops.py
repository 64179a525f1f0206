"""The interpreter's value instructions: operands, operators, containers, fields, builtin
and method calls, string formatting. Each handler reads its operands from the frame and
binds its `dest`; a failure is a ValueOpError (builtins.py words it in SGL terms)."""

from __future__ import annotations

from typing import Any

import sglc.runtime.executor.builtins as B
from sglc import ir
from sglc.runtime.executor.errors import SGLRuntimeError
from sglc.runtime.executor.frames import Frame


class ValueOps:
    """The value-op handlers the Interpreter inherits (it supplies `_write`)."""

    def _write(self, text: str) -> None:
        raise NotImplementedError

    def _val(self, operand: ir.Operand, frame: Frame) -> Any:
        if isinstance(operand, ir.Const):
            return operand.value
        try:
            return frame.vars[operand.name]
        except KeyError:
            raise SGLRuntimeError(f"variable '{operand.name}' has no value here") from None

    def _kwargs(self, kwargs: ir.KwArgs, frame: Frame) -> dict[str, Any]:
        return {name: self._val(v, frame) for name, v in kwargs}

    # -- value ops ----------------------------------------------------------------------------
    def _copy(self, i: ir.Copy, f: Frame) -> None:
        f.vars[i.dest] = self._val(i.src, f)

    def _binop(self, i: ir.BinOp, f: Frame) -> None:
        left, right = self._val(i.left, f), self._val(i.right, f)
        f.vars[i.dest] = B.guarded(
            f"{B.type_name(left)} {i.op} {B.type_name(right)}", lambda: B.BINOPS[i.op](left, right)
        )

    def _unop(self, i: ir.UnaryOp, f: Frame) -> None:
        value = self._val(i.operand, f)
        f.vars[i.dest] = B.guarded(f"{i.op} {B.type_name(value)}", lambda: B.UNARY[i.op](value))

    def _compare(self, i: ir.Compare, f: Frame) -> None:
        left, right = self._val(i.left, f), self._val(i.right, f)
        f.vars[i.dest] = B.guarded(
            f"{B.type_name(left)} {i.op} {B.type_name(right)}",
            lambda: B.COMPARES[i.op](left, right),
        )

    def _build_list(self, i: ir.BuildList, f: Frame) -> None:
        f.vars[i.dest] = [self._val(x, f) for x in i.items]

    def _build_dict(self, i: ir.BuildDict, f: Frame) -> None:
        keys = [self._val(k, f) for k in i.keys]
        f.vars[i.dest] = B.guarded(
            "dict", lambda: dict(zip(keys, (self._val(v, f) for v in i.values), strict=True))
        )

    def _index(self, i: ir.Index, f: Frame) -> None:
        f.vars[i.dest] = B.index(self._val(i.obj, f), self._val(i.index, f))

    def _slice(self, i: ir.Slice, f: Frame) -> None:
        obj = self._val(i.obj, f)
        start = None if i.start is None else self._val(i.start, f)
        stop = None if i.stop is None else self._val(i.stop, f)
        f.vars[i.dest] = B.guarded("slice", lambda: obj[start:stop])

    def _attr(self, i: ir.Attr, f: Frame) -> None:
        f.vars[i.dest] = B.attr(self._val(i.obj, f), i.name)

    def _pluck(self, i: ir.Pluck, f: Frame) -> None:
        f.vars[i.dest] = [B.attr(item, i.name) for item in self._val(i.obj, f)]

    def _call_builtin(self, i: ir.CallBuiltin, f: Frame) -> None:
        result = B.call_builtin(
            i.name, [self._val(a, f) for a in i.args], self._kwargs(i.kwargs, f), self._write,
            f.context(),
        )
        if i.dest is not None:
            f.vars[i.dest] = result

    def _call_method(self, i: ir.CallMethod, f: Frame) -> None:
        result = B.call_method(self._val(i.obj, f), i.method, [self._val(a, f) for a in i.args])
        if i.dest is not None:
            f.vars[i.dest] = result

    def _format(self, i: ir.Format, f: Frame) -> None:
        f.vars[i.dest] = "".join(ir.to_text(self._val(p, f)) for p in i.parts)
