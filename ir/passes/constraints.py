"""Constraint compilation: every gen's constraint becomes its one canonical regex, or a
grammar: a `grammar(...)` constraint's Lark text, or the llguidance grammar of a schema no
regex expresses (`sglc.constraints.grammar.route_schema`).

The IR records a constraint as written (`ir.Constraint`, a schema by its name in
`IRProgram.schemas`); this pass makes it self-contained (`sglc.constraints.Constraint`, the
schema as JSON text) and sets `Gen.regex = to_regex(...)`. The dialect, the schema subset and
`ConstraintError` are the leaf's; the checker reports every ConstraintError at its source
location first, so on a checked program this pass does not raise. Each regex fullmatches
exactly the texts `values.parse_generated` accepts for the gen's value type (json, schema: a
subset of what `json.loads` accepts, every match a valid instance). The token automaton is
the engine's business, not the IR's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sglc.constraints import Constraint, to_regex
from sglc.constraints.grammar import route_schema
from sglc.ir.instructions import Constraint as IRConstraint
from sglc.ir.instructions import Gen, Instr
from sglc.ir.program import IRProgram


def compile_constraints(prog: IRProgram) -> IRProgram:
    functions = {}
    for name, fn in prog.functions.items():
        blocks = tuple(replace(b, instrs=tuple(_with_regex(i, prog.schemas) for i in b.instrs))
                       for b in fn.blocks)
        functions[name] = replace(fn, blocks=blocks)
    return replace(prog, functions=functions)


def _with_regex(instr: Instr, schemas: dict[str, dict[str, Any]]) -> Instr:
    if not isinstance(instr, Gen):
        return instr
    c = instr.constraint
    if c.kind == "grammar":
        return replace(instr, regex=None, grammar=c.pattern)
    if c.kind == "schema":
        route = route_schema(leaf_constraint(c, schemas).schema or "")
        return replace(instr, regex=route.regex, grammar=route.grammar)
    return replace(instr, regex=constraint_regex(c, schemas))


def constraint_regex(c: IRConstraint, schemas: dict[str, dict[str, Any]]) -> str | None:
    """The canonical regex of a gen's constraint (None: any text). Raises ConstraintError."""
    return to_regex(leaf_constraint(c, schemas))


def leaf_constraint(c: IRConstraint, schemas: dict[str, dict[str, Any]]) -> Constraint:
    """The self-contained constraint of an IR constraint: a schema as its JSON text."""
    schema = json.dumps(schemas[c.schema or ""]) if c.kind == "schema" else None  # keeps order
    return Constraint(c.kind, pattern=c.pattern, choices=c.choices, schema=schema,
                      max_len=c.max_len)


__all__ = ["compile_constraints", "constraint_regex", "leaf_constraint"]
