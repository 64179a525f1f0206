"""FnBuilder: appends instructions to the current block of a function being lowered."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sglc.ir.instructions import TERMINATORS, Instr, Jump, Return, defined_var
from sglc.ir.program import Block
from sglc.source import Span


@dataclass
class Loop:
    """Where `continue` / `break` go, and how many role turns were open at loop entry."""

    continue_label: str
    break_label: str
    num_roles: int


@dataclass
class FnBuilder:
    """Blocks under construction. After a terminator the builder has no current block; an
    instruction emitted then opens a fresh, unreachable `dead` block (code after `return`),
    which the unreachable-code lint reports."""

    name: str
    blocks: list[tuple[str, list[Instr]]] = field(default_factory=list)
    current: list[Instr] | None = None
    num_temps: int = 0
    num_labels: int = 0
    loops: list[Loop] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    num_subfns: int = 0

    def __post_init__(self) -> None:
        self.start("entry")

    def temp(self) -> str:
        self.num_temps += 1
        return f"%{self.num_temps}"

    def label(self, hint: str) -> str:
        self.num_labels += 1
        return f"{hint}{self.num_labels}"

    def subfn_name(self, kind: str) -> str:
        self.num_subfns += 1
        return f"{self.name}${kind}{self.num_subfns}"

    def start(self, label: str) -> None:
        """Open block `label`; falls through (jumps) from the current block if it is open."""
        if self.current is not None:
            self.emit(Jump(label))
        self.current = []
        self.blocks.append((label, self.current))

    def emit(self, instr: Instr) -> None:
        if self.current is None:
            self.start(self.label("dead"))
        assert self.current is not None
        self.current.append(instr)
        if isinstance(instr, TERMINATORS):
            self.current = None

    @property
    def is_open(self) -> bool:
        return self.current is not None

    def retarget_last(self, temp: str, dest: str | None) -> bool:
        """If the last instruction of the open block defines the temporary `temp` (a `%`
        name, read nowhere yet), make it define `dest` instead."""
        if not temp.startswith("%") or not self.current or defined_var(self.current[-1]) != temp:
            return False
        self.current[-1] = replace(self.current[-1], dest=dest)  # type: ignore[call-arg]
        return True

    def finish(self, span: Span) -> tuple[Block, ...]:
        """Close the last block with `return` (a fn that falls off its end returns None)."""
        if self.current is not None:
            self.emit(Return(None, span=span))
        return tuple(Block(label, tuple(instrs)) for label, instrs in self.blocks)


__all__ = ["FnBuilder", "Loop"]
