"""Where a value comes from: the definitions of a variable that reach a point of a function
(reaching definitions over the blocks, through copies), as the sources the spec checks
know how to describe by a language: a `gen`, a `select` among constant options, a constant,
a parameter, or something else (a call's result, arithmetic, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from sglc.ir.analysis import predecessors
from sglc.ir.instructions import (
    BuildList,
    Const,
    Copy,
    Gen,
    Instr,
    Operand,
    Scalar,
    Select,
    Var,
    defined_var,
)
from sglc.ir.program import IRFunction

Point = tuple[str, int]
"""(block label, instruction index): just before that instruction."""


@dataclass(frozen=True)
class GenSource:
    gen: Gen
    point: Point


@dataclass(frozen=True)
class ChoiceSource:
    """A select among constant options."""

    select: Select
    options: tuple[str, ...]


@dataclass(frozen=True)
class ConstSource:
    value: Scalar
    instr: Instr | None


@dataclass(frozen=True)
class ParamSource:
    name: str


@dataclass(frozen=True)
class OtherSource:
    """A value no language describes; `what` says what made it."""

    what: str
    instr: Instr | None = None


Source = GenSource | ChoiceSource | ConstSource | ParamSource | OtherSource


class Definitions:
    """Reaching definitions of one function."""

    def __init__(self, fn: IRFunction) -> None:
        self.fn = fn
        self.blocks = fn.labels
        self.preds = predecessors(fn)
        self.params = {p.name for p in fn.params}

    def sources(self, operand: Operand, point: Point) -> list[Source]:
        """Every source the operand's value may come from at `point` (deduplicated)."""
        if isinstance(operand, Const):
            return [ConstSource(operand.value, None)]
        out: list[Source] = []
        seen_defs: set[Point] = set()
        for def_point in self.reaching(operand.name, point):
            if def_point in seen_defs:
                continue
            seen_defs.add(def_point)
            for src in self._describe(operand.name, def_point):
                if src not in out:
                    out.append(src)
        return out

    def reaching(self, name: str, point: Point) -> list[Point]:
        """The points of the definitions of `name` that reach `point`; a definition point
        of (entry label, -1) stands for the function's parameter."""
        found: list[Point] = []
        visited: set[str] = set()  # blocks scanned from their end
        todo = [point]
        while todo:
            label, index = todo.pop()
            instrs = self.blocks[label].instrs
            hit = next((i for i in range(index - 1, -1, -1)
                        if defined_var(instrs[i]) == name), None)
            if hit is not None:
                found.append((label, hit))
                continue
            if label == self.fn.blocks[0].label and name in self.params:
                found.append((label, -1))
            for p in self.preds[label]:
                if p not in visited:
                    visited.add(p)
                    todo.append((p, len(self.blocks[p].instrs)))
        return found

    def _describe(self, name: str, point: Point) -> list[Source]:
        label, index = point
        if index < 0:
            return [ParamSource(name)]
        instr = self.blocks[label].instrs[index]
        if isinstance(instr, Gen):
            if dict(instr.params).get("n") is not None:
                return [OtherSource("a gen with n samples (a list)", instr)]
            return [GenSource(instr, point)]
        if isinstance(instr, Copy):
            return self.sources(instr.src, point)
        if isinstance(instr, Select):
            options = self._constant_list(instr.options, point)
            if options is None:
                return [OtherSource("a select among options known only at run time", instr)]
            return [ChoiceSource(instr, options)]
        return [OtherSource(f"the result of {instr.opname}", instr)]

    def _constant_list(self, operand: Operand, point: Point) -> tuple[str, ...] | None:
        if not isinstance(operand, Var):
            return None
        points = self.reaching(operand.name, point)
        if len(points) != 1 or points[0][1] < 0:
            return None
        instr = self.blocks[points[0][0]].instrs[points[0][1]]
        if not isinstance(instr, BuildList):
            return None
        values = [i.value for i in instr.items if isinstance(i, Const)]
        if len(values) != len(instr.items) or not all(isinstance(v, str) for v in values):
            return None
        return tuple(values)  # type: ignore[arg-type]


__all__ = ["ChoiceSource", "ConstSource", "Definitions", "GenSource", "OtherSource",
           "ParamSource", "Point", "Source"]
