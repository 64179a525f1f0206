"""A gen's constraint in IR form, as written: no constraint (any text), a regex literal or a
module's regex constant, a `schema(...)` reference, or a type, read the way the checker read
it (`typed_constraint`: scalars, choices, bounded str, everything else as a JSON schema,
`json[T]` as T's JSON text). Schemas go into the program under a name; the constraint pass
makes the regex."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sglc.frontend import ast as A
from sglc.frontend.regexes import typed_constraint
from sglc.frontend.symbols import CheckedProgram
from sglc.ir.instructions import VALUE_TYPE_OF, Constraint, ValueType
from sglc.lang.types import SchemaT, Type

RegisterSchema = Callable[[str, dict[str, Any]], str]
"""Puts a JSON schema into the program under a name (or a free variant of it); the name."""


def gen_constraint(g: A.Gen, t: Type, checked: CheckedProgram,
                   register: RegisterSchema) -> tuple[Constraint, ValueType]:
    """The IR constraint and value type of gen `g`, whose checked type is `t`."""
    c = g.constraint
    if c is None:
        return Constraint("str"), "str"
    if isinstance(c, A.Regex):
        return Constraint("regex", pattern=c.pattern), "str"
    if isinstance(c, A.GrammarRef):
        return Constraint("grammar", pattern=checked.grammars[c]), "str"
    if isinstance(c, A.SchemaRef):
        source = c.source.value if isinstance(c.source, A.Str) else f"schema@{c.span.line}"
        return Constraint("schema", schema=register(source, checked.json_schemas[c])), "json"
    const = checked.constants.get(c)
    if const is not None:  # a module's regex constant
        return Constraint("regex", pattern=str(const.value)), "str"
    json_form = isinstance(c, A.TypeName) and c.name == "json" and bool(c.args)
    typed = typed_constraint(t, json_form)
    if typed.kind == "schema" and typed.schema is not None:
        name = t.info.name if isinstance(t, SchemaT) and not json_form else str(t)
        name = register(f"json[{name}]" if json_form else name, typed.schema)
        return Constraint("schema", schema=name), "json"
    return (Constraint(typed.kind, typed.pattern, typed.choices, None, typed.max_len),
            VALUE_TYPE_OF[typed.kind])


__all__ = ["RegisterSchema", "gen_constraint"]
