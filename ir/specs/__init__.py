"""Clover-style spec checks over the IR (DESIGN §6): each `requires` / `ensures` / `assert`
is proven, refuted with a counterexample, found contradictory, or left to run time, by
automata over the texts the values are generated as (`sglc.constraints.automata`). The
regular fragment of a condition is its spec term (`sglc.ir.spec_terms`, built by lowering).

    sources.py    where a value comes from (reaching definitions through copies)
    languages.py  a term as an automaton over a value's text (str, int, JSON string)
    judge.py      one spec against its sources: the four outcomes
    pushdown.py   regular specs intersected into gens' constraints
    check.py      the pass: pushdown, verdicts, diagnostics, proven checks dropped
"""

from sglc.ir.specs.check import SpecReport, check_specs
from sglc.ir.specs.judge import Verdict

__all__ = ["SpecReport", "Verdict", "check_specs"]
