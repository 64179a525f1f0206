"""Lints over the IR, reported as warnings (front-end Diagnostics).

- `unused-value`: a variable bound by a value instruction (`let`, arithmetic, a builtin or
  method result) that nothing reads. Names starting with `_` and compiler temporaries are
  exempt; so are gen/select/fork/parallel-for/call results (they act on a stream or the
  world even when their value is unused).
- `unreachable-code`: source instructions in blocks the entry can never reach (after a
  `return`, `break` or `continue`); one warning per block.
"""

from __future__ import annotations

from sglc.ir.analysis import reachable, read_vars
from sglc.ir.instructions import (
    Call,
    Fork,
    Gen,
    HostCall,
    Jump,
    ParallelMap,
    Return,
    Select,
    defined_var,
)
from sglc.ir.program import IRFunction, IRProgram
from sglc.source import Diagnostic

_EFFECTFUL = (Gen, Select, Fork, ParallelMap, Call, HostCall)


def lint(prog: IRProgram) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for name in sorted(prog.functions):
        fn = prog.functions[name]
        out.extend(unused_values(fn))
        out.extend(unreachable_code(fn))
    return out


def unused_values(fn: IRFunction) -> list[Diagnostic]:
    read = read_vars(fn)
    reported: set[str] = set()
    out = []
    for _, _, instr in fn.instructions():
        dest = defined_var(instr)
        if dest is None or dest in read or dest in reported or isinstance(instr, _EFFECTFUL):
            continue
        if dest.startswith(("%", "_")) or dest == "result" or not instr.span.line:
            continue
        reported.add(dest)
        out.append(Diagnostic("warning", f"the value of '{dest}' is never used", instr.span,
                              f"remove it, or name it '_{dest}' if that is intended",
                              "unused-value"))
    return out


def unreachable_code(fn: IRFunction) -> list[Diagnostic]:
    live = reachable(fn)
    out = []
    for block in fn.blocks:
        if block.label in live:
            continue
        first = next((i for i in block.instrs if i.span.line and not _is_plumbing(i)), None)
        if first is not None:
            out.append(Diagnostic("warning", "unreachable code", first.span,
                                  "nothing after a return, break or continue runs",
                                  "unreachable-code"))
    return out


def _is_plumbing(instr: object) -> bool:
    """Jumps and value-less returns the lowering adds to close blocks."""
    return isinstance(instr, Jump) or (isinstance(instr, Return) and instr.value is None)


__all__ = ["lint", "unreachable_code", "unused_values"]
