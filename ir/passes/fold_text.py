"""Text folding: adjacent constant appends become one (`append "a"; append "b"` -> "ab").

Only appends next to each other in a block fold; any other instruction between two appends
(even one without a stream effect) keeps them apart, so spans stay meaningful.
"""

from __future__ import annotations

from dataclasses import replace

from sglc.ir.instructions import Append, Const, Instr, Prefetch
from sglc.ir.program import IRFunction, IRProgram
from sglc.ir.values import to_text


def fold_text(prog: IRProgram) -> IRProgram:
    functions = {name: fold_function(fn) for name, fn in prog.functions.items()}
    return replace(prog, functions=functions)


def fold_function(fn: IRFunction) -> IRFunction:
    blocks = tuple(replace(b, instrs=fold_instrs(b.instrs)) for b in fn.blocks)
    return replace(fn, blocks=blocks)


def fold_instrs(instrs: tuple[Instr, ...]) -> tuple[Instr, ...]:
    out: list[Instr] = []
    for instr in instrs:
        if isinstance(instr, Prefetch):
            instr = replace(instr, prefix=fold_instrs(instr.prefix))
        prev = out[-1] if out else None
        if _is_const_append(instr) and prev is not None and _is_const_append(prev):
            text = to_text(prev.value.value) + to_text(instr.value.value)  # type: ignore[union-attr]
            out[-1] = replace(prev, value=Const(text))
        else:
            out.append(instr)
    return tuple(out)


def _is_const_append(instr: Instr) -> bool:
    return isinstance(instr, Append) and isinstance(instr.value, Const)


__all__ = ["fold_function", "fold_instrs", "fold_text"]
