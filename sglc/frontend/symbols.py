"""What the checker knows about names: functions, modules, variables, and its result."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from sglc.frontend import ast as A
from sglc.lang.signatures import Param
from sglc.lang.types import SchemaInfo, Type
from sglc.source import Diagnostic, has_errors


@dataclass(eq=False)
class FnSig:
    name: str
    params: tuple[Param, ...]
    returns: Type
    node: A.FnDef
    module: str


@dataclass(eq=False)
class ConstInfo:
    """A module constant (`let NAME = <literal>` at the top level): its type and value (a
    regex constant's value is its pattern)."""

    name: str
    type: Type
    value: object
    span: A.Span


@dataclass(eq=False)
class ModuleInfo:
    """One checked file: its AST and the names it declares (fns, externs, schemas,
    constants)."""

    name: str
    file: str
    module: A.Module
    fns: dict[str, FnSig] = field(default_factory=dict)
    schemas: dict[str, SchemaInfo] = field(default_factory=dict)
    imports: dict[str, ModuleInfo | None] = field(default_factory=dict)
    consts: dict[str, ConstInfo] = field(default_factory=dict)
    grammars: dict[str, A.GrammarDef] = field(default_factory=dict)  # `grammar` items


@dataclass(eq=False)
class Var:
    """A local binding (param, let, gen, select, for variable, fork handle)."""

    name: str
    type: Type
    span: A.Span
    kind: str  # param, let, gen, select, for, fork, parallel, branch
    used: bool = False
    samples: bool = False  # a gen with n=: its value is a list of samples


@dataclass(eq=False)
class CheckedProgram:
    """The checked main module, every module it imports (keyed by display file name), the
    sources of all of them, the static type of every expression and gen/select node, the
    module constant each name (or constraint) that reads one stands for, and the JSON
    schema of each `schema(...)` constraint."""

    main: ModuleInfo | None
    modules: dict[str, ModuleInfo]
    sources: dict[str, str]
    types: dict[object, Type] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    constants: dict[object, ConstInfo] = field(default_factory=dict)
    json_schemas: dict[object, dict] = field(default_factory=dict)
    # each `grammar(...)` constraint's Lark text
    grammars: dict[object, str] = field(default_factory=dict)
    # `schema(...)` constraints no regex expresses, decoded on the grammar path: (where, why)
    grammar_path_schemas: list[tuple[A.Span, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.main is not None and not has_errors(self.diagnostics)


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """'did you mean ...?' for the closest candidate, if any is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


# ---- the types of names that are not values: fns, modules, fork handles ------------------


@dataclass(frozen=True)
class ForkT(Type):
    """The handle `b` of `fork N as b`, after the block: `b.x` is the list of every
    branch's `x`, `b.text` the list of their texts."""

    name: str
    fields: dict[str, Var] = field(compare=False, hash=False)

    def __str__(self) -> str:
        return f"fork {self.name}"


@dataclass(frozen=True)
class BranchT(Type):
    """The handle `b` of `fork N as b` inside its block: `b.index` is the branch's number
    (0 to N-1)."""

    name: str

    def __str__(self) -> str:
        return f"fork branch {self.name}"


@dataclass(frozen=True)
class FnT(Type):
    sig: FnSig

    def __str__(self) -> str:
        return f"fn {self.sig.name}"


@dataclass(frozen=True)
class ModuleT(Type):
    info: ModuleInfo

    def __str__(self) -> str:
        return f"module {self.info.name}"
