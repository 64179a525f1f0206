"""Control-flow and dataflow facts about one IRFunction, shared by lowering, verifier, passes.

All analyses treat the function as its CFG: a block's successors are its terminator's labels.
"""

from __future__ import annotations

from sglc.ir.instructions import Branch, Instr, Jump, defined_var, used_vars
from sglc.ir.program import Block, IRFunction


def successors(block: Block) -> tuple[str, ...]:
    """Labels a block may go to next (by its last instruction)."""
    if not block.instrs:
        return ()
    last = block.instrs[-1]
    if isinstance(last, Branch):
        return (last.then_label, last.else_label)
    if isinstance(last, Jump):
        return (last.label,)
    return ()


def reachable(fn: IRFunction) -> set[str]:
    """Labels reachable from the entry block (unknown labels are ignored)."""
    labels = fn.labels
    if not fn.blocks:
        return set()
    seen = {fn.blocks[0].label}
    todo = [fn.blocks[0].label]
    while todo:
        for nxt in successors(labels[todo.pop()]):
            if nxt in labels and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def predecessors(fn: IRFunction) -> dict[str, list[str]]:
    preds: dict[str, list[str]] = {b.label: [] for b in fn.blocks}
    for b in fn.blocks:
        for nxt in successors(b):
            if nxt in preds:
                preds[nxt].append(b.label)
    return preds


def live_in(fn: IRFunction) -> dict[str, set[str]]:
    """Per label, the variables that may be read before being written from that block on."""
    gen_kill = {b.label: _uses_defs(b.instrs) for b in fn.blocks}
    live: dict[str, set[str]] = {b.label: set() for b in fn.blocks}
    changed = True
    while changed:
        changed = False
        for b in reversed(fn.blocks):
            out: set[str] = set()
            for nxt in successors(b):
                out |= live.get(nxt, set())
            uses, defs = gen_kill[b.label]
            new = uses | (out - defs)
            if new != live[b.label]:
                live[b.label] = new
                changed = True
    return live


def _uses_defs(instrs: tuple[Instr, ...]) -> tuple[set[str], set[str]]:
    uses: set[str] = set()
    defs: set[str] = set()
    for instr in instrs:
        uses |= {v for v in used_vars(instr) if v not in defs}
        dest = defined_var(instr)
        if dest is not None:
            defs.add(dest)
    return uses, defs


def maybe_defined_in(fn: IRFunction) -> dict[str, set[str]]:
    """Per label, the variables bound on at least one path from the entry to that block."""
    preds = predecessors(fn)
    params = {p.name for p in fn.params}
    defs = {b.label: _uses_defs(b.instrs)[1] for b in fn.blocks}
    into: dict[str, set[str]] = {b.label: set() for b in fn.blocks}
    if fn.blocks:
        into[fn.blocks[0].label] = set(params)
    changed = True
    while changed:
        changed = False
        for b in fn.blocks:
            new = set(into[b.label])
            for p in preds[b.label]:
                new |= into[p] | defs[p]
            if new != into[b.label]:
                into[b.label] = new
                changed = True
    return into


def read_vars(fn: IRFunction) -> set[str]:
    """Every variable some instruction reads."""
    return {v for _, _, instr in fn.instructions() for v in used_vars(instr)} | set(fn.outputs)


__all__ = ["live_in", "maybe_defined_in", "predecessors", "reachable", "read_vars",
           "successors"]
