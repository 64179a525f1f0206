"""IR passes, in order: text folding, prefix sharing, constraint compilation, lints.

    prog, diagnostics = run_passes(prog, verify=True)
"""

from __future__ import annotations

from collections.abc import Callable

from sglc.ir.passes.constraints import compile_constraints
from sglc.ir.passes.fold_text import fold_text
from sglc.ir.passes.lints import lint
from sglc.ir.passes.prefix_sharing import share_prefixes
from sglc.ir.program import IRProgram
from sglc.ir.verify import verify as verify_program
from sglc.source import Diagnostic

Pass = Callable[[IRProgram], IRProgram]

PASSES: dict[str, Pass] = {
    "fold_text": fold_text,
    "prefix_sharing": share_prefixes,
    "constraints": compile_constraints,
}
"""The transforming passes by name, in the order they run."""


def run_passes(prog: IRProgram, verify: bool = False, skip: tuple[str, ...] = (),
               lints: bool = True) -> tuple[IRProgram, list[Diagnostic]]:
    """Run every pass not in `skip` (e.g. `("prefix_sharing",)` for a benchmark baseline),
    then the lints. With `verify`, the verifier runs after each pass (IRVerifyError names
    the pass through its traceback)."""
    unknown = sorted(set(skip) - set(PASSES))
    if unknown:
        raise ValueError(f"unknown pass(es) {', '.join(unknown)}; passes: {', '.join(PASSES)}")
    for name, transform in PASSES.items():
        if name in skip:
            continue
        prog = transform(prog)
        if verify:
            verify_program(prog)
    return prog, (lint(prog) if lints else [])


__all__ = ["PASSES", "compile_constraints", "fold_text", "lint", "run_passes",
           "share_prefixes"]
