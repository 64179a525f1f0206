"""The types of IR parameters and results, as plain data.

A function's signature is saved with the program and read back without the front end, so
its types are small frozen values, not the checker's `sglc.lang.types` (which hold schema
tables and fn signatures). The printer prints them, `serialize.py` saves them, the CLI
parses `-a key=value` by walking them.

    IRType("int")                                  int
    IRType("list", (IRType("str"),))               list[str]
    IRType("dict", (IRType("str"), IRType("int"))) dict[str, int]   (value json: `dict`)
    IRType("choice", choices=("a", "b"))           "a" | "b"
    IRType("optional", (IRType("int"),))           int | None
    IRType("schema", name="Person")                Person  (its JSON schema: IRProgram.schemas)
    IRType("any")                                  any     (fork / parallel-for bodies)
    IRType("str", max=40)                          str[max=40]  (bounds: str, list, int)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, get_args

from sglc.lang import types as T

TypeKind = Literal["str", "int", "float", "bool", "None", "json", "any",
                   "list", "dict", "choice", "optional", "schema"]
TYPE_KINDS: tuple[str, ...] = get_args(TypeKind)
SCALAR_KINDS = ("str", "int", "float", "bool", "None", "json", "any")
_NUM_ARGS = {"list": 1, "dict": 2, "optional": 1}


_BOUNDED_KINDS = ("str", "int", "list")


@dataclass(frozen=True)
class IRType:
    """`kind`, with `args` for list (item), dict (key, value) and optional (inner), `choices`
    for a choice of strings, `name` for a schema; `min`/`max` bound a str's length, a
    list's number of items, an int's value."""

    kind: TypeKind
    args: tuple[IRType, ...] = ()
    choices: tuple[str, ...] = ()
    name: str = ""
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in TYPE_KINDS:
            raise ValueError(f"unknown IR type kind {self.kind!r}")
        if len(self.args) != _NUM_ARGS.get(self.kind, 0):
            raise ValueError(f"IR type {self.kind} takes {_NUM_ARGS.get(self.kind, 0)} "
                             f"argument(s), got {len(self.args)}")
        if (self.kind == "choice") != bool(self.choices):
            raise ValueError("a choice type, and only a choice type, has choices")
        if (self.kind == "schema") != bool(self.name):
            raise ValueError("a schema type, and only a schema type, has a name")
        if (self.min is not None or self.max is not None) and self.kind not in _BOUNDED_KINDS:
            raise ValueError(f"IR type {self.kind} takes no bounds")

    @property
    def bounds_text(self) -> str:
        """`min=1, max=3`, or "" without bounds."""
        return ", ".join(f"{k}={v}" for k, v in (("min", self.min), ("max", self.max))
                         if v is not None)

    def __str__(self) -> str:
        bounds = self.bounds_text
        if self.kind == "list":
            return f"list[{self.args[0]}, {bounds}]" if bounds else f"list[{self.args[0]}]"
        if bounds:
            return f"{self.kind}[{bounds}]"
        if self.kind == "dict":
            key, value = self.args
            return "dict" if value.kind == "json" else f"dict[{key}, {value}]"
        if self.kind == "optional":
            return f"{self.args[0]} | None"
        if self.kind == "choice":
            return " | ".join(json.dumps(c, ensure_ascii=False) for c in self.choices)
        if self.kind == "schema":
            return self.name
        return self.kind


_SCALARS = {kind: IRType(kind) for kind in SCALAR_KINDS}
ANY, JSON = _SCALARS["any"], _SCALARS["json"]


def ir_type(t: T.Type) -> IRType:
    """The IR form of a checked parameter or result type. Lowering runs on programs without
    errors, where a type is never `Unknown`; a fn, module or fork handle is never a
    parameter type. Both become `json`, the gradual type, rather than fail."""
    if isinstance(t, T.Prim) and t.name in SCALAR_KINDS:
        if t.bounds is not None:
            return IRType(t.name, min=t.bounds.min, max=t.bounds.max)  # type: ignore[arg-type]
        return _SCALARS[t.name]
    if isinstance(t, T.ListT):
        if t.bounds is not None:
            return IRType("list", (ir_type(t.elem),), min=t.bounds.min, max=t.bounds.max)
        return IRType("list", (ir_type(t.elem),))
    if isinstance(t, T.DictT):
        return IRType("dict", (ir_type(t.key), ir_type(t.value)))
    if isinstance(t, T.OptionalT):
        return IRType("optional", (ir_type(t.inner),))
    if isinstance(t, T.LiteralT):
        return IRType("choice", choices=t.values)
    if isinstance(t, T.SchemaT):
        return IRType("schema", name=t.info.name)
    return JSON


__all__ = ["ANY", "JSON", "IRType", "TYPE_KINDS", "TypeKind", "ir_type"]
