"""What the schema compiler's modules share: JSON pointers, outlines-core's regex of a
normalised schema, the placeholder and whitespace conventions, and `Compiler`, the part of
`SchemaCompiler` the object, array and literal rules call back into."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Protocol

from outlines_core.json_schema import build_regex_from_schema

from sglc.constraints.errors import ConstraintError

WHITESPACE = {"compact": "", "flexible": "[ ]?"}
"""The whitespace policies between JSON tokens, as outlines-core's whitespace patterns."""
PLACEHOLDER = "__sglc_subst_{}__"
"""The string constant standing for `SchemaCompiler.substitutions[i]` in the normalised schema."""
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "$schema",
                          "$id", "deprecated", "readOnly", "writeOnly", "$defs", "definitions",
                         "$anchor", "contentMediaType", "contentEncoding", "contentSchema"})
@lru_cache(maxsize=64)
def _outlines_text(schema_text: str, whitespace: str) -> str:
    try:
        return build_regex_from_schema(schema_text, whitespace_pattern=WHITESPACE[whitespace])
    except ValueError as exc:  # pragma: no cover - the subset is checked first
        raise ConstraintError(f"outlines-core cannot compile the schema: {exc}",
                              pointer="") from None


def outlines_regex(schema: Any, whitespace: str) -> str:
    """outlines-core's regex of a (normalised) schema."""
    return _outlines_text(json.dumps(schema), whitespace)


def pointer(base: str, *tokens: str | int) -> str:
    for token in tokens:
        base += "/" + str(token).replace("~", "~0").replace("/", "~1")
    return base


def json_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    kinds = {"string": str, "boolean": bool, "object": dict, "array": list}
    return value is None if name == "null" else isinstance(value, kinds[name])


def count(schema: dict[str, Any], key: str, ptr: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConstraintError(f"{key} must be a non-negative integer", pointer=pointer(ptr, key))
    return value


def check_range(schema: dict[str, Any], low: str, high: str, ptr: str, what: str) -> None:
    lo, hi = count(schema, low, ptr), count(schema, high, ptr)
    if lo is not None and hi is not None and lo > hi:
        raise ConstraintError(f"{high} is below {low}: no {what} fits",
                              pointer=pointer(ptr, high))


def without(schema: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in keys}


def substantive(schema: dict[str, Any]) -> bool:
    """Whether a schema object says more than annotations."""
    return any(key not in ANNOTATIONS for key in schema)




class Compiler(Protocol):
    """What the rules in schema_containers / schema_literals use of `SchemaCompiler`."""

    root: Any
    whitespace: str

    def node(self, schema: Any, ptr: str) -> Any: ...
    def never(self, ptr: str) -> None: ...
    def regex(self, normalised: Any) -> str: ...
    def placeholder(self, regex: str) -> dict[str, str]: ...
    def is_any(self, schema: Any) -> bool: ...
    def types(self, schema: dict[str, Any], ptr: str) -> list[str]: ...
    def fresh(self) -> Compiler:
        """A compiler of the same root (compact whitespace, no substitutions yet)."""
        ...


__all__ = ["ANNOTATIONS", "PLACEHOLDER", "WHITESPACE", "Compiler", "check_range", "count",
           "json_type", "outlines_regex", "pointer", "substantive", "without"]
