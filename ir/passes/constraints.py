"""Constraint compilation: every gen's constraint becomes its one canonical regex.

    int     -?(0|[1-9][0-9]*)                      (values.INT_REGEX; float, bool alike)
    str     None (unconstrained), or [\\s\\S]{0,N} with a length bound
    regex   the pattern as written (checked against the supported dialect)
    choice  (a|b|c), each option escaped
    schema  outlines-core's regex of the JSON schema, compact (no whitespace between tokens)
    json    the same for the schema {} (any JSON value, to outlines-core's nesting depth)

The compiler itself -- the regex dialect, the JSON schema subset, `ConstraintError` with its
JSON pointer or regex position -- is `sglc.constraints.regex`; this pass applies it.
Each regex fullmatches exactly the texts `values.parse_generated` accepts for the gen's value
type (for json/schema: a subset of what `json.loads` accepts, every match a valid instance).
The token automaton built from the regex is the engine's business, not the IR's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sglc.constraints.canonical import canonical_regex, escape_literal
from sglc.constraints.regex import ConstraintError
from sglc.constraints.schema import regex_for_schema as _regex_for_schema
from sglc.ir.instructions import Constraint, Gen, Instr
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
    return replace(instr, regex=constraint_regex(instr.constraint, schemas))


def constraint_regex(c: Constraint, schemas: dict[str, dict[str, Any]]) -> str | None:
    """The canonical regex of a constraint (None: any text). Raises ConstraintError."""
    schema = None
    if c.kind == "schema":
        schema = json.dumps(schemas[c.schema or ""])  # field order matters
    return canonical_regex(c.kind, pattern=c.pattern, choices=c.choices, schema=schema,
                           max_len=c.max_len)


def schema_regex(schema_json: str) -> str:
    """The compact canonical regex of a JSON schema given as JSON text."""
    return _regex_for_schema(schema_json)


__all__ = ["ConstraintError", "compile_constraints", "constraint_regex", "escape_literal",
           "schema_regex"]
