"""The symbols of a checked program: every declaration as a `Symbol`, every place a name is
written as an `Occurrence` of one, per module (`ModuleIndex`) and for the whole program
(`ProgramIndex`). sglc.editor.index builds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sglc.frontend import ModuleInfo
from sglc.lang import BUILTINS, GEN_PARAMS
from sglc.lang.types import SchemaInfo, SchemaT, Type
from sglc.source import Span

LOCAL_KINDS = ("param", "let", "gen", "select", "for", "fork", "parallel")


@dataclass(eq=False)
class Symbol:
    """A declared name. `kind`: fn, extern, schema, field, import, builtin, gen-param, or a
    local (LOCAL_KINDS). `span` is where its name is written (None: builtins and gen
    parameters), `full` the whole declaration; an import's `module` is the file it loads."""

    name: str
    kind: str
    span: Span | None
    full: Span | None = None
    type: Type | None = None
    node: object = None
    module: ModuleInfo | None = None
    children: list[Symbol] = field(default_factory=list)
    container: Symbol | None = None

    @property
    def key(self) -> tuple[str, str, int, int] | None:
        """The same declaration seen from two checks of the program compares equal here."""
        if self.span is None:
            return None
        return (self.kind, str(Path(self.span.file).resolve()), self.span.line, self.span.col)


@dataclass(frozen=True, eq=False)
class Occurrence:
    """A name written at `span`: the declaration itself (`is_def`) or a use; `type` is its
    static type there, when the checker knows it."""

    span: Span
    symbol: Symbol
    is_def: bool
    type: Type | None = None


@dataclass(eq=False)
class ModuleIndex:
    file: str
    symbols: list[Symbol] = field(default_factory=list)  # top level, in source order
    occurrences: list[Occurrence] = field(default_factory=list)
    fns: dict[str, Symbol] = field(default_factory=dict)
    schemas: dict[str, Symbol] = field(default_factory=dict)
    imports: dict[str, Symbol] = field(default_factory=dict)

    def at(self, line: int, col: int) -> Occurrence | None:
        """The occurrence covering (line, col), 1-based."""
        for occ in self.occurrences:
            s = occ.span
            if (s.line, s.col) <= (line, col) < (s.end_line, s.end_col) or \
                    (s.line, s.col) <= (line, col) == (s.end_line, s.end_col) and \
                    s.end_col > s.col:
                return occ
        return None

    def locals_at(self, line: int) -> list[Symbol]:
        """The local names bound before `line` in the fn whose body covers it."""
        for fn in self.fns.values():
            if fn.full and fn.full.line <= line <= fn.full.end_line:
                seen: dict[str, Symbol] = {}
                for s in fn.children:
                    if s.span and s.span.line <= line:
                        seen.setdefault(s.name, s)
                return list(seen.values())
        return []


@dataclass(eq=False)
class ProgramIndex:
    modules: dict[str, ModuleIndex]  # by file name, as spans name it

    def module(self, file: str) -> ModuleIndex | None:
        return self.modules.get(file)

    def references(self, symbol: Symbol) -> list[Occurrence]:
        key = symbol.key
        return [o for m in self.modules.values() for o in m.occurrences
                if o.symbol is symbol or (key is not None and o.symbol.key == key)]


BUILTIN_SYMBOLS = {name: Symbol(name, "builtin", None, node=b) for name, b in BUILTINS.items()}
GEN_PARAM_SYMBOLS = {name: Symbol(name, "gen-param", None, node=p)
                     for name, p in GEN_PARAMS.items()}


def schema_of(info: SchemaInfo, index: ProgramIndex) -> Symbol | None:
    """The declaration of a checked schema."""
    for m in index.modules.values():
        sym = m.schemas.get(info.name)
        if sym is not None and isinstance(sym.type, SchemaT) and sym.type.info is info:
            return sym
    return None
