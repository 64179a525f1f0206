"""One document as the language server sees it: checked exactly as `sglc check` checks it
(the front end, then the IR's lowering and lints), with its symbol index.

    a = analyze(text, "/abs/path/agent.sgl")
    a.diagnostics            # this file's, as `sglc check` reports them
    a.index.at(line, col)    # the symbol under the cursor (sglc.editor.index)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sglc.editor.index import build_index
from sglc.editor.symbols import ProgramIndex
from sglc.frontend import CheckedProgram, Diagnostic, check_program
from sglc.frontend.models import multiplexed_notes
from sglc.ir import Gen, IRProgram
from sglc.program import compile_checked
from sglc.source import Span


@dataclass(frozen=True)
class GenConstraint:
    """What a compiled gen decodes under: its canonical regex (None: any text) and, for a
    schema constraint, the schema's name."""

    regex: str | None
    schema: str | None


@dataclass(eq=False)
class Analysis:
    text: str
    filename: str
    program: CheckedProgram
    ir: IRProgram | None
    all_diagnostics: list[Diagnostic]

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """The diagnostics located in this document (imported files report their own)."""
        return [d for d in self.all_diagnostics if d.span.file == self.filename]

    @property
    def parsed(self) -> bool:
        """Did the whole document parse (no syntax errors)?"""
        return not any(d.code == "syntax" for d in self.diagnostics)

    @cached_property
    def index(self) -> ProgramIndex:
        return build_index(self.program)

    @cached_property
    def gen_constraints(self) -> dict[Span, GenConstraint]:
        """Each compiled gen's constraint by the gen's span (empty when the program has
        errors and so no IR)."""
        found: dict[Span, GenConstraint] = {}
        if self.ir is None:
            return found
        for fn in self.ir.functions.values():
            for block in fn.blocks:
                for instr in block.instrs:
                    if isinstance(instr, Gen) and instr.span is not None:
                        schema = instr.constraint.schema if instr.constraint.kind == "schema" \
                            else None
                        found[instr.span] = GenConstraint(instr.regex, schema)
        return found


def analyze(text: str, filename: str) -> Analysis:
    """Check `text` as the file `filename` (imports resolve next to it); never raises for
    mistakes in the program."""
    program, diags = check_program(text, filename=filename)
    ir, diags = compile_checked(program, diags)
    if program.ok:  # as `sglc check` reports them
        diags = [*diags, *multiplexed_notes(program)]
    return Analysis(text, filename, program, ir, diags)


def path_of(file: str) -> Path:
    """The file a span names (display names are relative to the working directory)."""
    return Path(file).resolve()
