"""Methods of str, list and dict: one record each, read by the checker (signature, result
type) and the executor (implementation, called as `impl(receiver, *args)`).

Parameters are positional-only, as in Python. Signatures use the receiver's type variables:
`T` is the item type of `list[T]`, `K` and `V` the key and value types of `dict[K, V]`.
Adding a method is adding one record to the table below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sglc.lang.signatures import ArgTypes, Param, ResultRule
from sglc.lang.types import (
    BOOL,
    INT,
    NONE,
    STR,
    DictT,
    ListT,
    OptionalT,
    Type,
    TypeVar,
    is_str,
    substitute,
)

T, K, V = TypeVar("T"), TypeVar("K"), TypeVar("V")


@dataclass(frozen=True)
class Method:
    """`owner.name(*params) -> result`: `owner` is "str", "list" or "dict"."""

    owner: str
    name: str
    params: tuple[Param, ...]
    result: Type | ResultRule
    impl: Callable[..., object]
    doc: str

    def params_for(self, receiver: Type) -> tuple[Param, ...]:
        """The parameters with the receiver's type variables bound."""
        binding = receiver_vars(receiver)
        return tuple(Param(p.name, substitute(p.type, binding), p.has_default, p.form)
                     for p in self.params)


def receiver_kind(t: Type) -> str | None:
    """Whose methods a value of static type `t` has: "str", "list", "dict", or None."""
    if is_str(t):
        return "str"
    if isinstance(t, ListT):
        return "list"
    if isinstance(t, DictT):
        return "dict"
    return None


def value_kind(value: object) -> str | None:
    """Whose methods a run-time value has."""
    for kind, cls in (("str", str), ("list", list), ("dict", dict)):
        if isinstance(value, cls):
            return kind
    return None


def receiver_vars(receiver: Type) -> dict[str, Type]:
    """The type variables a receiver binds: T of list[T], K and V of dict[K, V]."""
    if isinstance(receiver, ListT):
        return {"T": receiver.elem}
    if isinstance(receiver, DictT):
        return {"K": receiver.key, "V": receiver.value}
    return {}


def _get(args: ArgTypes) -> Type:
    value = args.vars["V"]
    return value if "default" in args else OptionalT(value)


def _keys(d: dict) -> list:
    return list(d)


def _values(d: dict) -> list:
    return list(d.values())


_METHODS = (
    Method("str", "strip", (), STR, str.strip, "s.strip(): without surrounding whitespace"),
    Method("str", "lower", (), STR, str.lower, "s.lower(): in lower case"),
    Method("str", "upper", (), STR, str.upper, "s.upper(): in upper case"),
    Method("str", "split", (Param("sep", STR, True),), ListT(STR), str.split,
           "s.split([sep]): the parts between separators (default: runs of whitespace)"),
    Method("str", "startswith", (Param("prefix", STR),), BOOL, str.startswith,
           "s.startswith(prefix): whether s begins with prefix"),
    Method("str", "endswith", (Param("suffix", STR),), BOOL, str.endswith,
           "s.endswith(suffix): whether s ends with suffix"),
    Method("str", "replace", (Param("old", STR), Param("new", STR)), STR, str.replace,
           "s.replace(old, new): every old replaced by new"),
    Method("str", "join", (Param("items", ListT(STR)),), STR, str.join,
           "sep.join(items): the items with sep between them"),
    Method("str", "find", (Param("sub", STR),), INT, str.find,
           "s.find(sub): the index of the first sub, or -1"),
    Method("str", "count", (Param("sub", STR),), INT, str.count,
           "s.count(sub): how many times sub occurs (not overlapping)"),
    Method("list", "append", (Param("item", T),), NONE, list.append,
           "xs.append(item): add item at the end"),
    Method("list", "pop", (Param("index", INT, True),), T, list.pop,
           "xs.pop([index]): remove and return the item at index (default: the last)"),
    Method("list", "extend", (Param("items", ListT(T)),), NONE, list.extend,
           "xs.extend(items): add the items at the end"),
    Method("list", "index", (Param("item", T),), INT, list.index,
           "xs.index(item): the index of the first equal item (an error if none)"),
    Method("list", "count", (Param("item", T),), INT, list.count,
           "xs.count(item): how many items equal item"),
    Method("dict", "get", (Param("key", K), Param("default", V, True)), _get, dict.get,
           "d.get(key[, default]): the value of key, else default (None if not given)"),
    Method("dict", "keys", (), ListT(K), _keys, "d.keys(): a list of the keys, in order"),
    Method("dict", "values", (), ListT(V), _values, "d.values(): a list of the values, in order"),
)

METHODS: Mapping[str, Mapping[str, Method]] = MappingProxyType({
    owner: MappingProxyType({m.name: m for m in _METHODS if m.owner == owner})
    for owner in ("str", "list", "dict")
})
"""Every method, by owner ("str", "list", "dict"), then name."""


def methods_of(kind: str | None) -> tuple[str, ...]:
    """The method names of a receiver kind (none for None)."""
    return tuple(METHODS.get(kind, {})) if kind else ()


def find_method(kind: str | None, name: str) -> Method | None:
    return METHODS.get(kind, {}).get(name) if kind else None


METHOD_NAMES = frozenset(m.name for m in _METHODS)
"""Every method name of any owner (what the IR verifier accepts in `call_method`)."""


__all__ = ["METHODS", "METHOD_NAMES", "Method", "find_method", "methods_of", "receiver_kind",
           "receiver_vars", "value_kind"]
