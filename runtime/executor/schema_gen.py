"""Schema gens filled field by field, so they are valid JSON before constrained decoding.

`gen p: Person` with a flat schema (string, integer, number, boolean and enum fields) runs
as the interleaved program

    '{"name":"' gen(stop='"')  '","age":' gen(int)  ',"city":' choice("Paris"|"Rome"|"Oslo")  '}'

in the canonical compact form the constraint pass's regex accepts. The model still writes
every value; the executor writes the JSON punctuation. Other schemas (nested objects,
arrays, `json`) are generated freely and checked against the regex.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sglc.ir.values import FLOAT_REGEX, INT_REGEX

_SCALAR = {"integer": ("int", INT_REGEX), "number": ("float", FLOAT_REGEX)}
MAX_STRING_TOKENS = 64
MAX_NUMBER_TOKENS = 12


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string | int | float | bool | choice
    regex: str | None = None
    choices: tuple[str, ...] = ()  # JSON-encoded choices, for `choice`


def flat_fields(schema: dict[str, Any] | None) -> list[Field] | None:
    """The fields of a flat object schema, in order; None when it is not flat."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    props = schema.get("properties")
    if not isinstance(props, dict) or set(schema.get("required", [])) != set(props):
        return None
    fields = []
    for name, sub in props.items():
        if not isinstance(sub, dict):
            return None
        if "enum" in sub and all(isinstance(v, (str, int, float, bool)) for v in sub["enum"]):
            choices = tuple(json.dumps(v, ensure_ascii=False) for v in sub["enum"])
            fields.append(Field(name, "choice", choices=choices))
        elif sub.get("type") == "string" and len(sub) == 1:
            fields.append(Field(name, "string"))
        elif sub.get("type") in _SCALAR and len(sub) == 1:
            kind, regex = _SCALAR[sub["type"]]
            fields.append(Field(name, kind, regex))
        elif sub.get("type") == "boolean" and len(sub) == 1:  # scored, like a choice
            fields.append(Field(name, "choice", choices=("true", "false")))
        else:
            return None
    return fields or None


def key_text(index: int, name: str) -> str:
    """The JSON written before field `index`'s value ('{"name":' / ',"age":')."""
    return ("{" if index == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":"
