"""Prefix sharing: `prefetch` hints before fan-out, and invariant prompt heads out of loops.

- Before each `fork` / `parallel_map`: a `prefetch` of the body's *static head* (the constant
  appends and role begins/ends its entry block starts with, skipping instructions without a
  stream effect) on the current stream. Emitted even when the head is empty (if the body
  touches its stream at all): the current stream itself is the prefix every branch shares.
- When a branch body calls an SGL fn before its first stream effect (a batched call, as in
  `parallel for q in qs: react(q)`), also a `prefetch fresh` of the callee's static head:
  every call starts a new stream with it.
- A `call` inside a loop also gets a `prefetch fresh` of its callee's head. Fresh prefetches
  depend on no variable and no stream, so they are hoisted out of loops into the block that
  enters the loop (repeatedly, out of nested loops); duplicates in one block are dropped.
"""

from __future__ import annotations

from dataclasses import replace

from sglc.ir.analysis import successors
from sglc.ir.instructions import (
    Append,
    Call,
    Const,
    Fork,
    Gen,
    Instr,
    Jump,
    ParallelMap,
    Prefetch,
    RoleBegin,
    RoleEnd,
    Select,
)
from sglc.ir.program import Block, IRFunction, IRProgram

_STREAM_OPS = (Append, RoleBegin, RoleEnd, Gen, Select, Fork, ParallelMap)


def share_prefixes(prog: IRProgram) -> IRProgram:
    functions = {name: _function(prog, fn) for name, fn in prog.functions.items()}
    return replace(prog, functions=functions)


def _function(prog: IRProgram, fn: IRFunction) -> IRFunction:
    blocks = [replace(b, instrs=_fan_outs(prog, b.instrs)) for b in fn.blocks]
    blocks = _loop_calls(prog, blocks)
    blocks = hoist_fresh_prefetches(blocks)
    return replace(fn, blocks=tuple(blocks))


def static_head(fn: IRFunction) -> tuple[tuple[Instr, ...], Call | None]:
    """The constant stream prefix a fn's entry block starts with, and the first SGL call made
    before that prefix ends (None if there is none)."""
    head: list[Instr] = []
    first_call: Call | None = None
    for instr in fn.blocks[0].instrs:
        if isinstance(instr, Call) and first_call is None:
            first_call = instr
        if isinstance(instr, (RoleBegin, RoleEnd)) or (
                isinstance(instr, Append) and isinstance(instr.value, Const)):
            head.append(replace(instr))
        elif isinstance(instr, _STREAM_OPS):
            break
    return tuple(head), first_call


def _uses_stream(fn: IRFunction) -> bool:
    return any(isinstance(i, _STREAM_OPS) for _, _, i in fn.instructions())


def _fresh_head(prog: IRProgram, fn_name: str) -> Prefetch | None:
    callee = prog.functions.get(fn_name)
    if callee is None:
        return None
    head, _ = static_head(callee)
    return Prefetch(head, fresh=True) if head else None


def _fan_outs(prog: IRProgram, instrs: tuple[Instr, ...]) -> tuple[Instr, ...]:
    out: list[Instr] = []
    for instr in instrs:
        if isinstance(instr, (Fork, ParallelMap)) and instr.body in prog.functions:
            head, call = static_head(prog.functions[instr.body])
            fresh = _fresh_head(prog, call.fn) if call is not None else None
            if fresh is not None:
                out.append(replace(fresh, span=instr.span))
            if head or _uses_stream(prog.functions[instr.body]):
                out.append(Prefetch(head, span=instr.span))
        out.append(instr)
    return tuple(out)


def _loop_calls(prog: IRProgram, blocks: list[Block]) -> list[Block]:
    """Put a fresh prefetch before each call inside a loop (hoisting moves it out)."""
    in_loop = {label for loop in natural_loops(blocks) for label in loop[1]}
    out = []
    for b in blocks:
        if b.label not in in_loop:
            out.append(b)
            continue
        instrs: list[Instr] = []
        for instr in b.instrs:
            fresh = _fresh_head(prog, instr.fn) if isinstance(instr, Call) else None
            if fresh is not None:
                instrs.append(replace(fresh, span=instr.span))
            instrs.append(instr)
        out.append(replace(b, instrs=tuple(instrs)))
    return out


def natural_loops(blocks: list[Block]) -> list[tuple[str, list[str]]]:
    """(head, body labels) per back edge, for block orders where a loop's blocks lie between
    its head and its latch (the order lowering makes)."""
    index = {b.label: i for i, b in enumerate(blocks)}
    loops = []
    for i, b in enumerate(blocks):
        for target in successors(b):
            j = index.get(target)
            if j is not None and j <= i:
                loops.append((target, [blk.label for blk in blocks[j:i + 1]]))
    return loops


def hoist_fresh_prefetches(blocks: list[Block]) -> list[Block]:
    """Move fresh prefetches from loop bodies into the loop's entering block."""
    for _ in range(len(blocks)):
        moved = _hoist_once(blocks)
        if moved is None:
            break
        blocks = moved
    return blocks


def _hoist_once(blocks: list[Block]) -> list[Block] | None:
    index = {b.label: i for i, b in enumerate(blocks)}
    for head, body in natural_loops(blocks):
        pre = index[head] - 1
        if pre < 0 or not _enters(blocks[pre], head):
            continue
        hoisted = [i for label in body for i in blocks[index[label]].instrs
                   if isinstance(i, Prefetch) and i.fresh]
        if not hoisted:
            continue
        out = [replace(b, instrs=tuple(i for i in b.instrs
                                       if not (isinstance(i, Prefetch) and i.fresh)))
               if b.label in body else b for b in blocks]
        entering = out[pre]
        kept = list(entering.instrs[:-1])
        for p in hoisted:
            if p not in kept:
                kept.append(p)
        out[pre] = replace(entering, instrs=(*kept, entering.instrs[-1]))
        return out
    return None


def _enters(block: Block, head: str) -> bool:
    return bool(block.instrs) and isinstance(block.instrs[-1], Jump) and \
        block.instrs[-1].label == head


__all__ = ["hoist_fresh_prefetches", "natural_loops", "share_prefixes", "static_head"]
