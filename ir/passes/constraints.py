"""Constraint compilation: every gen's constraint becomes its one canonical regex.

    int     -?(0|[1-9][0-9]*)                      (values.INT_REGEX; float, bool alike)
    str     None (unconstrained), or [\\s\\S]{0,N} with a length bound
    regex   the pattern as written
    choice  (a|b|c), each option escaped
    schema  outlines-core's regex of the JSON schema, compact (no whitespace between tokens)
    json    the same for the schema {} (any JSON value, to outlines-core's nesting depth)

Each regex fullmatches exactly the texts `values.parse_generated` accepts for the gen's value
type (for json/schema: a subset of what `json.loads` accepts, every match a valid instance).
The token FSM built from the regex is the engine's business, not the IR's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from typing import Any

from outlines_core.json_schema import build_regex_from_schema

from sglc.ir.instructions import Constraint, Gen, Instr
from sglc.ir.program import IRProgram
from sglc.ir.values import BOOL_REGEX, FLOAT_REGEX, INT_REGEX

_SCALARS = {"int": INT_REGEX, "float": FLOAT_REGEX, "bool": BOOL_REGEX}
_SPECIAL = set("\\.^$|?*+()[]{}")


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
    """The canonical regex of a constraint (None: any text)."""
    if c.kind in _SCALARS:
        return _SCALARS[c.kind]
    if c.kind == "str":
        return None if c.max_len is None else rf"[\s\S]{{0,{c.max_len}}}"
    if c.kind == "regex":
        return c.pattern
    if c.kind == "choice":
        return "(" + "|".join(escape_literal(v) for v in c.choices) + ")"
    if c.kind == "schema":
        return schema_regex(json.dumps(schemas[c.schema or ""]))  # field order matters
    if c.kind == "json":
        return schema_regex("{}")
    raise ValueError(f"unknown constraint kind {c.kind!r}")


def escape_literal(text: str) -> str:
    """Escape the characters that are special in both Python `re` and Rust `regex`."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


@lru_cache(maxsize=256)
def schema_regex(schema_json: str) -> str:
    return build_regex_from_schema(schema_json, whitespace_pattern="")


__all__ = ["compile_constraints", "constraint_regex", "escape_literal", "schema_regex"]
