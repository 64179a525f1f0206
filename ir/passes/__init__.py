"""IR passes, in order: text folding, prefix sharing, constraint compilation, spec checks
(with spec pushdown), lints.

    prog, diagnostics = run_passes(prog, verify=True)
"""

from __future__ import annotations

from collections.abc import Callable

from sglc.ir.passes.constraints import compile_constraints
from sglc.ir.passes.fold_text import fold_text
from sglc.ir.passes.lints import lint
from sglc.ir.passes.prefix_sharing import share_prefixes
from sglc.ir.program import IRProgram
from sglc.ir.specs import check_specs
from sglc.ir.verify import verify as verify_program
from sglc.source import Diagnostic

Pass = Callable[[IRProgram], IRProgram]

PASSES: dict[str, Pass] = {
    "fold_text": fold_text,
    "prefix_sharing": share_prefixes,
    "constraints": compile_constraints,
}
"""The transforming passes by name, in the order they run."""
SPEC_PASSES = ("specs", "spec_pushdown")
"""The spec checks (sglc.ir.specs), after the passes above: `spec_pushdown` intersects
regular specs into gens' constraints, `specs` judges every spec and drops proven checks
(skipping it skips both)."""


def run_passes(prog: IRProgram, verify: bool = False, skip: tuple[str, ...] = (),
               lints: bool = True) -> tuple[IRProgram, list[Diagnostic]]:
    """Run every pass not in `skip` (e.g. `("prefix_sharing",)` for a benchmark baseline),
    then the lints. With `verify`, the verifier runs after each pass (IRVerifyError names
    the pass through its traceback)."""
    unknown = sorted(set(skip) - set(PASSES) - set(SPEC_PASSES))
    if unknown:
        raise ValueError(f"unknown pass(es) {', '.join(unknown)}; passes: "
                         f"{', '.join([*PASSES, *SPEC_PASSES])}")
    for name, transform in PASSES.items():
        if name in skip:
            continue
        prog = transform(prog)
        if verify:
            verify_program(prog)
    spec_diagnostics: list[Diagnostic] = []
    if "specs" not in skip and "constraints" not in skip:
        prog, spec_diagnostics, _ = check_specs(prog, pushdown="spec_pushdown" not in skip)
        if verify:
            verify_program(prog)
    return prog, spec_diagnostics + (lint(prog) if lints else [])


__all__ = ["PASSES", "SPEC_PASSES", "compile_constraints", "fold_text", "lint", "run_passes",
           "share_prefixes"]
