"""Static types of SGL values, how they print, and when one may stand for another.

`Json` is the gradual "any JSON value" (the `json` type); `Unknown` marks an expression
whose error was already reported, so one mistake doesn't cascade into many.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class Type:
    """Base of all static types."""


@dataclass(frozen=True)
class Bounds:
    """Bounds written on a type: a str's length (`str[max=40]`), a list's number of items
    (`list[int, min=1, max=3]`), an int's value (`int[min=0, max=150]`). They constrain what
    a gen produces and what a fn accepts from outside; static typing ignores them."""

    min: int | None = None
    max: int | None = None

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in (("min", self.min), ("max", self.max))
                         if v is not None)


@dataclass(frozen=True)
class Prim(Type):
    """str, int, float, bool, None, regex. NOTE: `bounds` take no part in equality (a
    `str[max=5]` is a str to the type rules); read them where they matter."""

    name: str
    bounds: Bounds | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.name}[{self.bounds}]" if self.bounds else self.name


@dataclass(frozen=True)
class Json(Type):
    def __str__(self) -> str:
        return "json"


@dataclass(frozen=True)
class Unknown(Type):
    def __str__(self) -> str:
        return "<unknown>"


@dataclass(frozen=True)
class ListT(Type):
    """`list[T]`; `bounds` (how many items) take no part in equality, as `Prim.bounds`."""

    elem: Type
    bounds: Bounds | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"list[{self.elem}, {self.bounds}]" if self.bounds else f"list[{self.elem}]"


@dataclass(frozen=True)
class DictT(Type):
    key: Type
    value: Type

    def __str__(self) -> str:
        return "dict" if isinstance(self.value, Json) else f"dict[{self.key}, {self.value}]"


@dataclass(frozen=True)
class LiteralT(Type):
    """A string from a fixed set: `"a" | "b"`, a choice gen, a select over constants."""

    values: tuple[str, ...]

    def __str__(self) -> str:
        if len(self.values) == 1:  # a plain string constant: messages say str
            return "str"
        return " | ".join(_quote(v) for v in self.values)


@dataclass(frozen=True)
class OptionalT(Type):
    inner: Type

    def __str__(self) -> str:
        return f"{self.inner} | None"


@dataclass(eq=False)
class SchemaInfo:
    """A schema's fields, filled in after all schema names are known (they may nest)."""

    name: str
    fields: dict[str, Type] = field(default_factory=dict)
    doc: str | None = None


@dataclass(frozen=True)
class SchemaT(Type):
    info: SchemaInfo

    def __str__(self) -> str:
        return self.info.name


@dataclass(frozen=True)
class TypeVar(Type):
    """A placeholder in a method's signature, bound by its receiver: `T` of `list[T]`,
    `K` and `V` of `dict[K, V]` (see `substitute`)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class BuiltinT(Type):
    name: str

    def __str__(self) -> str:
        return f"builtin {self.name}"


@dataclass(frozen=True)
class NamespaceT(Type):
    """A name that groups builtins: `json` in `json.loads(text)`."""

    name: str

    def __str__(self) -> str:
        return f"namespace {self.name}"


@dataclass(frozen=True)
class BindingT(Type):
    """An argument written as a binding (`meta(x)`): the statement that bound the name
    (`gen` or `select`), and whether a gen's value is a list of samples (`n=`)."""

    kind: str
    samples: bool = False

    def __str__(self) -> str:
        return f"{self.kind} binding"


STR, INT, FLOAT, BOOL, NONE, REGEX = (Prim(n) for n in ("str", "int", "float", "bool", "None",
                                                         "regex"))
JSON, UNKNOWN = Json(), Unknown()
PRIMS = {"str": STR, "int": INT, "float": FLOAT, "bool": BOOL}


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def is_gradual(t: Type) -> bool:
    return isinstance(t, (Json, Unknown))


def is_str(t: Type) -> bool:
    return t == STR or isinstance(t, LiteralT)


def is_numeric(t: Type) -> bool:
    return t in (INT, FLOAT, BOOL)


def widen(t: Type) -> Type:
    """The type a `let` gives an inferred value: literal strings become str."""
    if isinstance(t, LiteralT):
        return STR
    if isinstance(t, ListT):
        return ListT(widen(t.elem))
    return t


def assignable(src: Type, dst: Type) -> bool:
    """May a value of type `src` be used where `dst` is expected?"""
    if is_gradual(src) or is_gradual(dst) or src == dst:
        return True
    if isinstance(dst, OptionalT):
        return src == NONE or assignable(src, dst.inner)
    if dst == FLOAT:
        return src in (INT, BOOL)
    if dst == INT:
        return src == BOOL
    if dst == STR:
        return isinstance(src, LiteralT)
    if isinstance(dst, LiteralT) and isinstance(src, LiteralT):
        return set(src.values) <= set(dst.values)
    if isinstance(dst, ListT) and isinstance(src, ListT):
        return assignable(src.elem, dst.elem)
    if isinstance(dst, DictT):
        if isinstance(src, DictT):
            return assignable(src.key, dst.key) and assignable(src.value, dst.value)
        return isinstance(src, SchemaT) and isinstance(dst.value, Json)
    return False


def join(a: Type, b: Type) -> Type:
    """The least type holding both (list elements, branches of `x if c else y`)."""
    if isinstance(a, Unknown):
        return b
    if isinstance(b, Unknown):
        return a
    if is_gradual(a) or is_gradual(b):
        return JSON
    if assignable(a, b):
        return b
    if assignable(b, a):
        return a
    if isinstance(a, LiteralT) and isinstance(b, LiteralT):
        return LiteralT(tuple(dict.fromkeys(a.values + b.values)))
    if is_str(a) and is_str(b):
        return STR
    if a == NONE:
        return b if isinstance(b, OptionalT) else OptionalT(b)
    if b == NONE:
        return a if isinstance(a, OptionalT) else OptionalT(a)
    if isinstance(a, ListT) and isinstance(b, ListT):
        return ListT(join(a.elem, b.elem))
    return JSON


def substitute(t: Type, binding: Mapping[str, Type]) -> Type:
    """`t` with its type variables replaced from `binding` (an unbound one is unknown)."""
    if isinstance(t, TypeVar):
        return binding.get(t.name, UNKNOWN)
    if isinstance(t, ListT):
        return ListT(substitute(t.elem, binding))
    if isinstance(t, DictT):
        return DictT(substitute(t.key, binding), substitute(t.value, binding))
    if isinstance(t, OptionalT):
        return OptionalT(substitute(t.inner, binding))
    return t


def element_type(t: Type) -> Type | None:
    """What `for x in t` gives, or None when t cannot be iterated."""
    if isinstance(t, ListT):
        return t.elem
    if is_str(t):
        return STR
    if isinstance(t, DictT):
        return t.key
    if is_gradual(t):
        return t
    return None
