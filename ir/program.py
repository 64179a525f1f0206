"""An IR program: functions of basic blocks, JSON schemas, extern signatures, an entry.

Names: a fn's qualified name is `module.fn` (module = the file's stem: `agent.react`,
`tools.search`); the bodies of `fork` and `parallel for` are functions of their own named
`<enclosing fn>$fork<N>` / `<enclosing fn>$map<N>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sglc.ir.instructions import NO_SPAN, Instr, Scalar
from sglc.ir.types import IRType
from sglc.source import Span

FORMAT_VERSION = 3
"""Bumped whenever the IR or its JSON form changes incompatibly."""

FnKind = Literal["fn", "fork_body", "map_body"]


@dataclass(frozen=True)
class Param:
    """A parameter: its name, its type, and the constant default (a scalar, or a list/dict of
    scalars; callers copy it) if it has one; `span` is where it is declared."""

    name: str
    type: IRType
    default: Scalar | list | dict | None = None
    has_default: bool = False
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Block:
    """A basic block: a label and instructions, the last one a terminator."""

    label: str
    instrs: tuple[Instr, ...]


@dataclass(frozen=True)
class IRFunction:
    """One fn (or fork / parallel-for body). `blocks[0]` is the entry block.

    Kinds: `fn` (called with `Call`, new stream); `fork_body` (params = the captures; returns
    the dict of its outputs, the variables a branch binds, keyed by name); `map_body` (params =
    the item variable, then the captures; returns the item's value).
    """

    name: str
    params: tuple[Param, ...]
    returns: IRType
    blocks: tuple[Block, ...]
    file: str
    doc: str | None = None
    kind: FnKind = "fn"
    outputs: tuple[str, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False)
    defaults: tuple[tuple[str, Scalar | list], ...] = ()

    @property
    def labels(self) -> dict[str, Block]:
        return {b.label: b for b in self.blocks}

    def block(self, label: str) -> Block:
        return self.labels[label]

    def instructions(self) -> list[tuple[str, int, Instr]]:
        """All (label, index, instr) in block order."""
        return [(b.label, i, ins) for b in self.blocks for i, ins in enumerate(b.instrs)]


@dataclass(frozen=True)
class ExternSig:
    """An `extern fn`: supplied by the host, bound by its short `name`."""

    name: str
    params: tuple[Param, ...]
    returns: IRType
    doc: str | None = None
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class IRProgram:
    """A whole program. `functions` and `externs` are keyed by qualified name; `schemas` maps a
    schema (or container type) name to its JSON schema; `entry` is the qualified name of the
    main module's `main`, if any; `module` is the main module's name (short names resolve
    there, see `resolve`)."""

    functions: dict[str, IRFunction]
    schemas: dict[str, dict[str, Any]]
    externs: dict[str, ExternSig]
    entry: str | None
    module: str
    version: int = FORMAT_VERSION

    def resolve(self, name: str) -> str:
        """A user-facing fn name (`react` or `agent.react`) -> its qualified name."""
        if name in self.functions:
            return name
        qualified = f"{self.module}.{name}"
        if qualified in self.functions:
            return qualified
        raise KeyError(name)

    def replace_function(self, fn: IRFunction) -> IRProgram:
        return replace(self, functions={**self.functions, fn.name: fn})


__all__ = ["FORMAT_VERSION", "Block", "ExternSig", "IRFunction", "IRProgram", "Param"]
